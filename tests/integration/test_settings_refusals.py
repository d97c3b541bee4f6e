"""Bad input through the real path (a YAML file, real sops, the CLI, Postgres): one line, exit 1, nothing applied."""

from __future__ import annotations

import pytest

from airstack.settings import keys, sops
from tests.integration.settings_helpers import Repo, document

pytestmark = pytest.mark.postgres
FILE = "settings/local/secret.yaml"


def write_yaml(repo: Repo, text: str) -> None:
    """Encrypt YAML as a user writes it (``sops edit``): sops' own YAML reading, not our JSON."""
    ciphertext = sops._run(["encrypt", "--filename-override", FILE, "--input-type", "yaml", "--output-type", "yaml",
                            "/dev/stdin"], file=FILE, env="local", key_env={}, input=text, cwd=repo.root)
    sops.write_atomically(repo.path(), ciphertext)


KEYS = "  keys: {{fernet_key: {fernet}, api_secret_key: {secret}, jwt_secret: {secret}}}\n"


def yaml_file(body: str):
    def breaker(repo: Repo, monkeypatch) -> None:
        head = "airflow:\n" + KEYS.format(fernet=keys.new_fernet_key(), secret=keys.new_secret())
        write_yaml(repo, head + body)
    return breaker


def changed(mutate):
    def breaker(repo: Repo, monkeypatch) -> None:
        doc = document()
        mutate(doc["airflow"])
        repo.write(doc)
    return breaker


def _cut(repo: Repo, monkeypatch) -> None:
    text = repo.path().read_text()
    repo.path().write_text(text[: len(text) * 2 // 3])


def _no_mac(repo: Repo, monkeypatch) -> None:
    repo.path().write_text("".join(line for line in repo.path().read_text().splitlines(True)
                                   if not line.lstrip().startswith("mac:")))


def _outside(repo: Repo, monkeypatch) -> None:
    elsewhere = repo.root.parent / "elsewhere.yaml"
    repo.path().rename(elsewhere)
    repo.path().symlink_to(elsewhere)


def _bomb(repo: Repo, monkeypatch) -> None:
    lines = ["b0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, 9)]
    repo.path().write_text("\n".join(lines) + "\n" + repo.path().read_text())


def _oversize(repo: Repo, monkeypatch) -> None:
    monkeypatch.setattr(sops, "MAX_FILE_BYTES", repo.path().stat().st_size - 1)


def _garbage_key(repo: Repo, monkeypatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY", "AGE-SECRET-KEY-1THISISNOTAKEY")


REFUSALS = {
    "port-true": (changed(lambda a: a["connections"][0].update(port=True)),
                  "airflow.connections[0].port: a boolean where a number is due"),
    "slots-true": (yaml_file("  pools: [{name: p, slots: true}]\n"), "airflow.pools[0].slots: a boolean"),
    "slots-yes": (yaml_file("  pools: [{name: p, slots: yes}]\n"), "airflow.pools[0].slots: Input should be a valid"),
    "variable-tilde": (yaml_file("  variables: {region: ~}\n"), "airflow.variables.region: no value"),
    "variable-unquoted-exponent": (yaml_file("  variables: {limit: 1e3}\n"), "airflow.variables.limit: a number"),
    "variable-octal": (yaml_file("  variables: {mode: 0o17}\n"), "airflow.variables.mode: a number"),
    "variable-big-int": (yaml_file("  variables: {ids: {last: 9007199254740993}}\n"),
                         "airflow.variables.ids.last: an integer outside ±2^53"),
    "variable-nul": (changed(lambda a: a["variables"].update(threshold="1\x000")), "airflow.variables.threshold: "),
    "login-nul": (changed(lambda a: a["connections"][0].update(login="e\x00tl")), "airflow.connections[0].login: "),
    "extra-duplicate": (changed(lambda a: a["connections"][0].update(extra='{"sslmode": "a", "sslmode": "b"}')),
                        "airflow.connections[0].extra: extra: duplicate key 'sslmode'"),
    "variables-duplicate": (yaml_file("  variables: '{\"a\": \"1\", \"a\": \"2\"}'\n"),
                            "airflow.variables: variables: duplicate key 'a'"),
    "host-too-long": (changed(lambda a: a["connections"][0].update(host="h" * 600)),
                      "airflow.connections[0].host: longer than 500 characters"),
    "slots-int32": (changed(lambda a: a["pools"][0].update(slots=2**31)), "airflow.pools[0].slots: "),
    "uri-port-big": (changed(lambda a: a["connections"].append({"id": "api", "type": "http",
                                                                "uri": "http://h:70000/"})),
                     "airflow.connections[1]: uri: the port must be a number"),
    "uri-port-word": (changed(lambda a: a["connections"].append({"id": "api", "type": "http",
                                                                 "uri": "http://h:abc/"})),
                      "airflow.connections[1]: uri: the port must be a number"),
    "uri-scheme": (changed(lambda a: a["connections"].append({"id": "api", "type": "http", "uri": "://h/"})),
                   "airflow.connections[1]: uri has no scheme"),
    "truncated": (_cut, f"{FILE} is truncated"),
    "mac-removed": (_no_mac, f"{FILE} has lost its sops MAC"),
    "symlink-out": (_outside, f"{FILE} is a symlink to "),
    "alias-bomb": (_bomb, f"{FILE} expands to"),
    "oversize": (_oversize, f"{FILE} is 0.0 MiB, over the"),
    "garbage-age-key": (_garbage_key, "SOPS_AGE_KEY: line 1 is not an age identity"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refused_in_one_line_and_nothing_applied(name, repo, restore_db, cli, monkeypatch):
    from airstack.settings import importer

    breaker, expected = REFUSALS[name]
    breaker(repo, monkeypatch)
    before = importer.snapshot()
    code, out, err = cli("apply", "local")
    lines = err.strip().splitlines()
    assert code == 1, out
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err
    assert importer.snapshot() == before


def test_any_identity_that_decrypts_is_accepted(repo, cli, tmp_path, monkeypatch):
    other = tmp_path / "keys.txt"
    other.write_text(keys.generate_age_key().identity + "\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other))  # a valid identity, not this file's: the committed one is
    assert cli("check", "local")[0] == 0
    (repo.root / "settings" / "local" / "age.key").unlink()
    assert cli("check", "local")[0] == 1  # none left that decrypts
    monkeypatch.setenv("SOPS_AGE_KEY", f"# a comment\n{keys.generate_age_key().identity}\n{repo.local.identity}")
    assert cli("check", "local")[0] == 0


# ------------------------------------------------------------------- sops' own exit codes --
def test_edit_without_a_change_is_a_success_that_says_so(repo, cli, monkeypatch):
    before = repo.path().read_bytes()
    monkeypatch.setenv("EDITOR", "true")  # saves nothing: sops exits 200, FileHasNotBeenModified
    code, out, err = cli("edit", "local")
    assert code == 0 and "no change made" in out, err
    assert repo.path().read_bytes() == before


@pytest.mark.parametrize(("code", "args", "expected"), [
    (203, ["encrypt", FILE], f"{FILE} is encrypted already"),
    (100, ["decrypt", "settings/local/missing.yaml"], f"{FILE} does not exist"),
    (7, ["set", "--value-stdin", FILE, "airflow.keys"], "the value or the path given to `sops set`"),
])
def test_sops_exit_codes_from_the_real_binary(code, args, expected, repo):
    with pytest.raises(sops.SopsError) as excinfo:
        sops._run(args, file=FILE, env="local", key_env=keys.key_env(repo.root, "local"), input='"x"',
                  cwd=repo.root)
    assert str(excinfo.value) == sops.EXIT_MESSAGES[code].format(file=FILE, env="local")
    assert expected in str(excinfo.value)


def test_a_second_keys_writer_is_refused_in_one_line(repo, cli):
    import fcntl
    import os

    before = repo.path().read_bytes()
    fd = os.open(repo.path().parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running settings-keys holds it
        code, _, err = cli("keys", "local", "--rotate-fernet")
    finally:
        os.close(fd)
    assert code == 1 and err.strip().splitlines() == [
        f"error: {FILE}: another settings-keys is changing it: run this again when it has finished"]
    assert repo.path().read_bytes() == before
    assert cli("keys", "local", "--rotate-fernet")[0] == 0  # once it is released
