"""Real sops, real age keys (generated here): round trips, readable ids, and every sops refusal."""

from __future__ import annotations

import pytest
import yaml

from airstack import paths
from airstack.cli import run_main
from airstack.settings import keys, sops, sops_config, store
from airstack.settings.main import main
from tests.integration.settings_helpers import document


def test_round_trip_keeps_ids_readable_and_values_secret(repo):
    doc = document(password="pw-visible-only-decrypted", extra_var="hidden-value")
    repo.write(doc)
    text = repo.path().read_text()
    for readable in ("warehouse_db", "postgres", "threshold", "extra_var", "warehouse"):
        assert readable in text
    for secret in ("pw-visible-only-decrypted", "hidden-value", "db.internal", doc["airflow"]["keys"]["jwt_secret"]):
        assert secret not in text
    assert store.decrypt_raw(repo.root, "local") == doc
    ids = store.plaintext_ids(repo.path())
    assert ids.connections == {"warehouse_db"} and ids.variables == {"threshold", "extra_var"}


def test_committed_local_key_is_no_recipient_of_other_environments():
    root = paths.repo_root()
    local = keys.recipient_of((root / "settings" / "local" / "age.key").read_text())
    config = sops_config.load(root / ".sops.yaml")
    assert local in sops_config.recipients(config, "local")["age"]
    for env in ("integration", "production"):
        assert local not in sops_config.recipients(config, env)["age"], env
        metadata = yaml.safe_load((root / "settings" / env / "secret.yaml").read_text())["sops"]
        assert local not in [a["recipient"] for a in metadata["age"]], env
        with pytest.raises(sops.SopsError, match="none of its keys is available"):
            store.decrypt_raw(root, env)


def _tamper_value(repo):
    text = repo.path().read_text()
    start = text.index("password: ENC[AES256_GCM,data:") + len("password: ENC[AES256_GCM,data:")
    flipped = "A" if text[start] != "A" else "B"
    repo.path().write_text(text[:start] + flipped + text[start + 1:])


def _tamper_plaintext(repo):
    repo.path().write_text(repo.path().read_text().replace("slots: 4", "slots: 400"))


def _tamper_mac(repo):
    text = repo.path().read_text()
    start = text.index("mac: ENC[AES256_GCM,data:") + len("mac: ENC[AES256_GCM,data:")
    repo.path().write_text(text[:start] + ("A" if text[start] != "A" else "B") + text[start + 1:])


def _bad_base64(repo):
    text = repo.path().read_text()
    start = text.index("password: ENC[AES256_GCM,data:") + len("password: ENC[AES256_GCM,data:")
    repo.path().write_text(text[:start] + "!!" + text[start + 2:])


def _wrong_key(repo):
    (repo.root / "settings" / "local" / "age.key").write_text(keys.generate_age_key().identity + "\n")


def _no_key(repo):
    (repo.root / "settings" / "local" / "age.key").unlink()


def _plaintext(repo):
    repo.path().write_text(yaml.safe_dump(document()))


def _invalid_yaml(repo):
    repo.path().write_text("airflow: [unclosed\n")


SOPS_FAILURES = {
    "wrong-key": (_wrong_key, "settings/local/secret.yaml: none of its keys is available here"),
    "no-key": (_no_key, "settings/local/secret.yaml: none of its keys is available here"),
    "tampered-value": (_tamper_value, "settings/local/secret.yaml holds a value that does not decrypt"),
    "tampered-plaintext-field": (_tamper_plaintext, "settings/local/secret.yaml was changed outside sops (MAC"),
    "tampered-mac": (_tamper_mac, "settings/local/secret.yaml was changed outside sops (MAC"),
    "bad-ciphertext": (_bad_base64, "settings/local/secret.yaml holds a value that does not decrypt"),
    "plaintext-file": (_plaintext, "settings/local/secret.yaml is not encrypted"),
    "invalid-yaml": (_invalid_yaml, "settings/local/secret.yaml is not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(SOPS_FAILURES))
def test_sops_refusals_are_one_clear_line(name, repo, capsys):
    breaker, expected = SOPS_FAILURES[name]
    breaker(repo)
    assert run_main(main, ["check", "local"]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
