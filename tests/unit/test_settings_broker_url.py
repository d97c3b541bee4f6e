"""airflow.celery_broker_url (CeleryExecutor deploys): a secret like the metadata URL, encrypted by sops."""

import re

import pytest

from airstack import paths
from airstack.settings import sops_config
from airstack.settings.schema import SettingsError, parse_settings

FILE = "settings/test/secret.yaml"
URL = "rediss://:s3cr3t-token@broker.internal:6379/0?ssl_cert_reqs=required"


@pytest.mark.parametrize("key", ["celery_broker_url", "metadata_connection", "password", "secret"])
def test_the_encrypted_regex_covers_the_broker_url(key):
    assert re.match(sops_config.ENCRYPTED_REGEX, key)


@pytest.mark.parametrize("key", ["id", "type", "celery", "broker_url", "celery_broker_url_id"])
def test_names_stay_readable(key):
    assert not re.match(sops_config.ENCRYPTED_REGEX, key)


def test_every_sops_rule_uses_the_encrypted_regex():
    """`.sops.yaml` (what sops reads when it encrypts) agrees with the code that writes new rules."""
    config = sops_config.load(paths.repo_root() / ".sops.yaml")
    rules = config["creation_rules"]
    assert {rule["path_regex"] for rule in rules} == {sops_config.path_regex(e)
                                                      for e in ("local", "integration", "production")}
    assert [rule["encrypted_regex"] for rule in rules] == [sops_config.ENCRYPTED_REGEX] * len(rules)


def test_the_broker_url_is_optional_and_kept():
    assert parse_settings({"airflow": {}}, FILE).airflow.celery_broker_url is None
    assert parse_settings({"airflow": {"celery_broker_url": URL}}, FILE).airflow.celery_broker_url == URL


@pytest.mark.parametrize("value", ["", "broker.internal:6379", "s3cr3t-token"])
def test_a_bad_broker_url_is_one_line_without_the_value(value):
    with pytest.raises(SettingsError) as caught:
        parse_settings({"airflow": {"celery_broker_url": value}}, FILE)
    (line,) = caught.value.lines
    assert line.startswith(f"{FILE}: airflow.celery_broker_url: not a broker URL")
    assert not value or value not in line, "a secret in the message"


@pytest.mark.parametrize(("value", "why"), [
    ("redis://:s3cr3t-token@broker.internal:6379/0", "must use rediss:// (TLS), not redis://"),
    ("rediss://broker.internal:6379/0?ssl_cert_reqs=required", "must carry the broker's AUTH token"),
    ("rediss://:s3cr3t-token@broker.internal:6379/0?ssl_cert_reqs=none", "ssl_cert_reqs must be required"),
])
def test_the_broker_url_must_be_tls_with_the_auth_token_and_a_verified_server(value, why):
    with pytest.raises(SettingsError) as caught:
        parse_settings({"airflow": {"celery_broker_url": value}}, FILE)
    (line,) = caught.value.lines
    assert line.startswith(f"{FILE}: airflow.celery_broker_url: ") and why in line
    assert "s3cr3t-token" not in line, "a secret in the message"
