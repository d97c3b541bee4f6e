"""The upgrade rehearsal's config lint (airstack.upgrade.steps.config_lint) on each environment's whole configuration:
what the chart gives the api-server, OIDC and its webserver_config.py included, read without any key.

Real parts: scratch copies of the repository whose integration secret.yaml is encrypted by real sops for an age
key thrown away at once (so nothing can be decrypted), and this venv's Airflow 3.3 and FAB (the current lock's,
which the rehearsal runs as its "before"), which lint airflow.cfg and load webserver_config.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from airstack import paths
from airstack.deploy import chart_values
from airstack.errors import ConfigError
from airstack.settings import sops
from airstack.settings.keys import generate_age_key, new_fernet_key, new_secret
from airstack.settings.sops_config import add_recipient
from airstack.upgrade import deployed, steps

OIDC = {"provider": "sso", "client_id": "airflow-integration", "client_secret": "the-client-secret-1234",
        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
        "role_mapping": {"airflow-admins": "Admin"}, "default_role": "Viewer"}
INFORMATIONAL = "Changed default value of `executor`"


def scratch(tmp_path, oidc: dict | None = OIDC):
    """The repository's deploy files; integration's secret.yaml with ``oidc`` (production's as committed)."""
    root = paths.scratch_copy(tmp_path / "repo", ("settings", "charts", "infra"), (".sops.yaml",))
    add_recipient(root / ".sops.yaml", "integration", generate_age_key().recipient)  # its identity is not kept
    airflow = {"keys": {"fernet_key": new_fernet_key(), "api_secret_key": new_secret(), "jwt_secret": new_secret()},
               **({"auth": {"oidc": oidc}} if oidc else {})}
    path = root / "settings" / "integration" / "secret.yaml"
    sops.write_atomically(path, sops.encrypt({"airflow": airflow}, path, env="integration", key_env={}, root=root))
    assert "the-client-secret" not in path.read_text()
    return root


def lint(root, env, tmp_path) -> list[str]:
    scratch_dir = tmp_path / f"lint-{env}"
    scratch_dir.mkdir()
    return steps.config_lint(steps.current_python(), root, env, scratch_dir)


def test_the_api_servers_oidc_config_is_part_of_what_is_linted(tmp_path):
    root = scratch(tmp_path)
    values = deployed.chart_values(root, "integration")
    config, env = deployed.api_server(values)
    assert config == (root / chart_values.OIDC_CONFIG).read_text()
    assert json.loads(env["AIRSTACK_OIDC"])["client_id"] == "airflow-integration"
    assert env["AIRSTACK_OIDC_CLIENT_SECRET"] == deployed.SECRET_PLACEHOLDER  # from a Secret: never decrypted
    config, env = deployed.api_server(deployed.chart_values(root, "production"))  # no OIDC there
    assert config is None and not [name for name in env if name.startswith("AIRSTACK_OIDC")], env
    assert set(env) == {"FORWARDED_ALLOW_IPS"}  # the ingress's trusted proxies (airstack/deploy/ingress.py)
    for name in ("integration", "production"):  # webserver_config.py loads with this Airflow and FAB
        findings = lint(root, name, tmp_path)
        assert [f for f in findings if not f.startswith(INFORMATIONAL)] == [], (name, findings)


def test_a_webserver_config_the_target_cannot_load_is_a_finding(tmp_path):
    """As when an upgrade of FAB drops a name files/webserver_config.py imports: only where OIDC is deployed."""
    root = scratch(tmp_path)
    config = root / chart_values.OIDC_CONFIG
    config.write_text(config.read_text().replace("import AUTH_OAUTH", "import AUTH_OAUTH, AUTH_GONE_IN_FAB_9"))
    (finding,) = [f for f in lint(root, "integration", tmp_path) if not f.startswith(INFORMATIONAL)]
    assert finding.startswith("the api-server's webserver_config.py (charts/platform/files/webserver_config.py) "
                              "does not load with this Airflow: ImportError: cannot import name 'AUTH_GONE_IN_FAB_9'")
    assert [f for f in lint(root, "production", tmp_path) if not f.startswith(INFORMATIONAL)] == []


def test_the_api_servers_own_airflow_settings_are_linted(tmp_path):
    """``apiServer.env`` reaches the api-server only: an option Airflow 3 moved, set there, is found."""
    root = scratch(tmp_path, oidc=None)
    values_file = root / "charts" / "airflow" / "values-production.yaml"
    values = yaml.safe_load(values_file.read_text())
    values.setdefault("apiServer", {})["env"] = [{"name": "AIRFLOW__WEBSERVER__SECRET_KEY", "value": "k"}]
    values_file.write_text(yaml.safe_dump(values))
    (moved,) = [f for f in lint(root, "production", tmp_path) if "secret_key" in f]
    assert "webserver" in moved and "api" in moved, moved


def test_a_malformed_readable_oidc_section_is_one_line(tmp_path):
    root = scratch(tmp_path, oidc={**OIDC, "server_metadata_url": "http://idp.example.com/x"})
    with pytest.raises(ConfigError) as exc:
        deployed.chart_values(root, "integration")
    (line,) = str(exc.value).splitlines()
    assert line.startswith("settings/integration/secret.yaml: airflow.auth.oidc.server_metadata_url: must be an "
                           "https:// URL")
