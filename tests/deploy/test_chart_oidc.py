"""FAB's OIDC login in the deploy's charts (settings' airflow.auth.oidc), rendered by the real Helm engine:
the platform chart's Secret <release>-oidc, and the official chart 1.19.0 with the deploy's payload
(airstack.deploy.chart_values.with_oidc) giving the api-server files/webserver_config.py and the env."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import yaml

from airstack.deploy import chart_values, target
from airstack.deploy.chart_values import merge_values
from airstack.settings.schema import parse_settings
from tests.deploy.charts.render import (ENVIRONMENTS, K8S_VERSIONS, ROOT, assert_valid_kubernetes, by_kind, decoded,
                                        load_all, official_chart_release, official_values, platform_chart,
                                        platform_values, render)

__all__ = ["official_chart_release", "platform_chart"]  # fixtures used here
TGT = target.Target("airflow", "airflow-platform", "airflow")
RUNTIME = "registry.example/airflow:0123abcd"


def oidc_settings(client_secret: str):
    return parse_settings({"airflow": {"auth": {"oidc": {
        "provider": "sso", "client_id": "airflow-integration", "client_secret": client_secret,
        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
        "role_mapping": {"airflow-admins": "Admin", "data-team": "User"}, "default_role": "Viewer"}}}},
        "settings/integration/secret.yaml")


def rendered_pair(official_chart, platform_chart, env: str, client_secret: str) -> tuple[list[dict], list[dict]]:
    settings = oidc_settings(client_secret)
    platform = render(platform_chart, platform_values(env, chart_values.platform_values(settings, TGT, RUNTIME)))
    config = (ROOT / chart_values.OIDC_CONFIG).read_text()
    payload = chart_values.with_oidc(
        chart_values.airflow_values(TGT, RUNTIME, {}, "digest", users_script="print()"), TGT.airflow_release,
        settings.airflow.auth.oidc, config)
    rendered = official_chart.render(values=merge_values(official_values(env), payload), name="airflow",
                                     namespace="airflow", is_install=True)
    official = [d for p, t in rendered.items() if not p.endswith("NOTES.txt") for d in load_all(t)]
    return platform, official


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_api_server_gets_the_oidc_config_and_the_secret_from_the_platform_secret(
        official_chart_release, platform_chart, env):
    client_secret = secrets.token_urlsafe(24)
    platform, official = rendered_pair(official_chart_release, platform_chart, env, client_secret)
    assert decoded(by_kind(platform, "Secret")["airflow-oidc"]) == {"client-secret": client_secret}

    api = by_kind(official, "Deployment")["airflow-api-server"]["spec"]["template"]["spec"]
    (container,) = [c for c in api["containers"] if c["name"] == "api-server"]
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["AIRSTACK_OIDC_CLIENT_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "airflow-oidc", "key": "client-secret"}}
    public = json.loads(env_vars["AIRSTACK_OIDC"]["value"])
    assert public["client_id"] == "airflow-integration" and "client_secret" not in public
    assert public["role_mapping"] == {"airflow-admins": "Admin", "data-team": "User"}

    # The chart's ConfigMap holds files/webserver_config.py as it is (the chart renders it with tpl),
    # and the api-server mounts it where [fab] config_file looks ($AIRFLOW_HOME/webserver_config.py).
    (config_map,) = [o for o in by_kind(official, "ConfigMap").values() if "webserver_config.py" in o.get("data", {})]
    assert config_map["data"]["webserver_config.py"] == (ROOT / chart_values.OIDC_CONFIG).read_text().rstrip("\n")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/opt/airflow/webserver_config.py"]["subPath"] == "webserver_config.py"
    assert_valid_kubernetes(platform + official, K8S_VERSIONS)


def test_the_client_secret_is_only_in_the_platform_secret(official_chart_release, platform_chart):
    client_secret = secrets.token_urlsafe(24)
    platform, official = rendered_pair(official_chart_release, platform_chart, "production", client_secret)
    encoded = base64.b64encode(client_secret.encode()).decode()
    holding = [f"{o['kind']}/{o['metadata']['name']}" for o in platform + official
               if client_secret in yaml.safe_dump(o) or encoded in yaml.safe_dump(o)]
    assert holding == ["Secret/airflow-oidc"]


def test_without_oidc_nothing_changes(official_chart_release, platform_chart):
    settings = parse_settings({"airflow": {}}, "settings/integration/secret.yaml")
    values = chart_values.airflow_values(TGT, RUNTIME, {}, "digest", users_script="print()")
    assert chart_values.with_oidc(values, "airflow", settings.airflow.auth.oidc, "ignored") is values
    platform = render(platform_chart, platform_values("integration", chart_values.platform_values(settings, TGT,
                                                                                                  RUNTIME)))
    assert "airflow-oidc" not in by_kind(platform, "Secret")
