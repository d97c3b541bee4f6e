"""Settings' airflow.auth.oidc (airstack/settings/oidc.py): what a deploy accepts, and one line per bad field."""

from __future__ import annotations

import re

import pytest

from airstack.settings import sops_config
from airstack.settings.schema import SettingsError, parse_settings

FILE = "settings/production/secret.yaml"
SECRET = "s3cr3t-client-value-x"


def oidc(**changes) -> dict:
    base = {"provider": "sso", "client_id": "airflow", "client_secret": SECRET,
            "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
            "role_mapping": {"airflow-admins": "Admin"}}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def problems(section: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"airflow": {"auth": {"oidc": section}}}, FILE)
    return caught.value.lines


def test_defaults_and_the_readable_part():
    parsed = parse_settings({"airflow": {"auth": {"oidc": oidc()}}}, FILE).airflow.auth.oidc
    assert parsed.scopes == ["openid", "email", "profile"] and parsed.roles_claim == "groups"
    assert parsed.default_role is None
    assert "client_secret" not in parsed.public() and SECRET not in repr(parsed)
    assert parse_settings({"airflow": {}}, FILE).airflow.auth.oidc is None


@pytest.mark.parametrize(("change", "field"), [
    ({"provider": "SSO/x"}, "provider"),
    ({"client_id": ""}, "client_id"),
    ({"client_secret": "short"}, "client_secret"),
    ({"server_metadata_url": "http://idp.example.com/.well-known/openid-configuration"}, "server_metadata_url"),
    ({"server_metadata_url": "ftp://127.0.0.1/x"}, "server_metadata_url"),
    ({"scopes": ["email"]}, "scopes"),
    ({"role_mapping": {"admins": "Root"}}, "role_mapping.admins"),
    ({"default_role": "Owner"}, "default_role"),
    ({"role_mapping": {}}, "(top level)"),
    ({"surprise": 1}, "surprise"),
])
def test_each_bad_field_is_one_line_naming_file_and_field(change, field):
    lines = problems(oidc(**change))
    assert len(lines) == 1, lines
    where = "airflow.auth.oidc" if field == "(top level)" else f"airflow.auth.oidc.{field}"
    assert lines[0].startswith(f"{FILE}: {where}"), lines
    assert SECRET not in lines[0]


def test_a_missing_client_secret_is_named_and_http_on_loopback_is_allowed():
    assert problems(oidc(client_secret=None)) == [f"{FILE}: airflow.auth.oidc.client_secret: Field required"]
    url = "http://127.0.0.1:8123/.well-known/openid-configuration"
    assert parse_settings({"airflow": {"auth": {"oidc": oidc(server_metadata_url=url)}}}, FILE)


def test_sops_encrypts_the_client_secret_and_nothing_else_of_the_section():
    assert re.match(sops_config.ENCRYPTED_REGEX, "client_secret")
    for key in ("provider", "client_id", "server_metadata_url", "role_mapping", "default_role"):
        assert not re.match(sops_config.ENCRYPTED_REGEX, key)
