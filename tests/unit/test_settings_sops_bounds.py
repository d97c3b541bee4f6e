"""What the settings tooling decides before sops runs: bounds, diagnoses, exit codes, identities (no sops here)."""

from __future__ import annotations

import re
import time

import pytest

from airstack.errors import ConfigError
from airstack.settings import keys, sops

COMPLETE = """\
airflow:
    connections:
        - id: warehouse_db
          password: ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]
sops:
    age:
        - recipient: age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2026-01-01T00:00:00Z"
    mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
    version: 3.11.0
"""


def _file(tmp_path, text: str):
    path = tmp_path / "secret.yaml"
    path.write_text(text)
    return path


def _refusal(tmp_path, text: str) -> str:
    with pytest.raises(sops.SopsError) as excinfo:
        sops.inspect(_file(tmp_path, text), "settings/unit/secret.yaml", "unit")
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_a_complete_file_passes(tmp_path):
    assert sops.inspect(_file(tmp_path, COMPLETE), "f", "unit") == COMPLETE


def test_plaintext_truncated_and_macless_files_each_get_their_own_message(tmp_path):
    plaintext = _refusal(tmp_path, "airflow:\n    variables:\n        a: '1'\n")
    cut_in_metadata = _refusal(tmp_path, COMPLETE[:COMPLETE.index("    age:")])
    cut_in_a_value = _refusal(tmp_path, COMPLETE[:COMPLETE.index("data:Zm9v") + 6])
    macless = _refusal(tmp_path, "".join(line for line in COMPLETE.splitlines(True) if "mac:" not in line))
    assert "is not encrypted: encrypt it" in plaintext
    assert "truncated or its `sops:` block is damaged" in cut_in_metadata
    assert "do not encrypt it again" in cut_in_metadata
    assert "truncated" in cut_in_a_value and "encrypt it with" not in cut_in_a_value
    assert "has lost its sops MAC" in macless
    assert len({plaintext, cut_in_metadata, macless}) == 3


def test_a_truncated_file_that_is_no_longer_yaml_is_not_called_plaintext(tmp_path):
    message = _refusal(tmp_path, COMPLETE.replace("type:str]", "type:str]\n  - [", 1))
    assert "is truncated or damaged (line" in message and "restore it from git" in message


def test_invalid_yaml_names_the_line(tmp_path):
    assert re.search(r"is not valid YAML \(line \d\): ", _refusal(tmp_path, "airflow:\n  - [unclosed\n"))


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 nodes once expanded
    started = time.perf_counter()
    message = _refusal(tmp_path, "\n".join(bomb) + "\n" + COMPLETE)
    assert "YAML nodes through aliases" in message and "remove the aliases" in message
    assert time.perf_counter() - started < 5  # bounded: it is counted, never expanded


def test_yaml_nested_beyond_reason_is_one_line(tmp_path):
    deep = "a: &x " + "[" * 5000 + "]" * 5000 + "\nb: *x\n"  # counting the aliases' expansion recurses
    assert "nests its YAML too deeply" in _refusal(tmp_path, deep + COMPLETE)


def test_a_few_aliases_are_allowed(tmp_path):
    text = "defaults: &d {region: eu}\nother: *d\n" + COMPLETE
    assert sops.inspect(_file(tmp_path, text), "f", "unit") == text


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(sops, "MAX_FILE_BYTES", len(COMPLETE) - 1)
    message = _refusal(tmp_path, COMPLETE)
    assert "over the 0 MiB limit" in message or "limit for a settings file" in message


# --------------------------------------------------------------------------- exit codes --
DOCUMENTED = [2, 3, 4, 5, 6, 7, 21, 23, 24, 25, 49, 51, 52, 61, 85, 91, 100, 111, 128, 200, 201, 202, 203]


@pytest.mark.parametrize("code", DOCUMENTED)
def test_each_documented_exit_code_has_its_own_message(code):
    message = sops.explain(code, "settings/unit/secret.yaml", "unit", "sops' own words")
    others = {sops.explain(c, "settings/unit/secret.yaml", "unit", "") for c in DOCUMENTED if c != code}
    assert message not in others
    assert "settings/unit/secret.yaml" in message or code in (5, 7, 85, 202)
    assert "sops' own words" not in message  # a known code speaks for itself


def test_the_mapping_follows_sops_documentation():
    assert "not modified" in sops.explain(200, "f", "e", "")  # FileHasNotBeenModified: `settings-edit` succeeds
    assert "encrypted already" in sops.explain(203, "f", "e", "")
    assert "does not exist" in sops.explain(100, "f", "e", "")
    assert "MAC mismatch" in sops.explain(51, "f", "e", "")
    assert "none of its keys" in sops.explain(128, "f", "e", "")


def test_an_unknown_or_generic_code_shows_sops_last_line():
    assert sops.explain(1, "f", "e", "first\nError: the reason\n") == "sops failed on f (exit 1): Error: the reason"
    assert sops.explain(77, "f", "e", "") == "sops failed on f (exit 77)"


# ---------------------------------------------------------------------------- identities --
def test_every_identity_is_offered_and_garbage_is_named(tmp_path):
    repo = tmp_path / "repo"
    (repo / "settings" / "local").mkdir(parents=True)
    committed, mine, other = (keys.generate_age_key() for _ in range(3))
    (repo / "settings" / "local" / "age.key").write_text(committed.identity + "\n")
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# created by age-keygen\n{other.identity}\n")
    env = keys.key_env(repo, "local", {"SOPS_AGE_KEY": mine.identity, "SOPS_AGE_KEY_FILE": str(key_file)})
    assert env["SOPS_AGE_KEY"].splitlines() == [mine.identity, committed.identity]  # the file reaches sops itself
    with pytest.raises(ConfigError, match=r"^SOPS_AGE_KEY: line 1 is not an age identity") as excinfo:
        keys.key_env(repo, "local", {"SOPS_AGE_KEY": "AGE-SECRET-KEY-1NOTAKEY"})
    assert "NOTAKEY" not in str(excinfo.value)
    key_file.write_text(f"{other.identity}\nsomething else\n")
    with pytest.raises(ConfigError, match=r"^SOPS_AGE_KEY_FILE \(.*\): line 2 is not an age identity"):
        keys.key_env(repo, "local", {"SOPS_AGE_KEY_FILE": str(key_file)})
    with pytest.raises(ConfigError, match="SOPS_AGE_KEY_FILE: .* does not exist"):
        keys.key_env(repo, "local", {"SOPS_AGE_KEY_FILE": str(tmp_path / "missing.txt")})
    assert keys.key_env(repo, "integration", {}) == {}
