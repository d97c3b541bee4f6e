"""deploy.yaml's ``airflow.ingress`` in the official chart 1.19.0, rendered by the real Helm engine with each committed
environment's files and the deploy's payload: the api-server's Ingress, its command line and env (the proxies it
trusts), airflow.cfg's ``[api] base_url``; and a deploy through the recording `helm` stand-in passing them on stdin.
(The same values run a real api-server behind a real proxy in tests/integration/test_ingress_proxy.py.)"""

from __future__ import annotations

import configparser
import hashlib

import pytest
import yaml

from airstack.cli import run_main
from airstack.deploy import config
from airstack.deploy import chart_values, target
from airstack.deploy import deployer
from airstack.deploy.main import main
from airstack.deploy.chart_values import merge_values
from airstack.settings.deploy_file import AirflowOptions
from airstack.settings.ingress import Ingress
from airstack.settings.schema import parse_settings
from tests.deploy.conftest import helm_only_with_made_up_images
from tests.deploy.charts.render import (ENVIRONMENTS, K8S_VERSIONS, ROOT, assert_valid_kubernetes, by_kind, load_all,
                                        official_chart, official_chart_release, official_values, pinned_schema)

__all__ = ["official_chart_release"]  # a fixture used here
RUNTIME = "registry.example/airflow:0123abcd"


def rendered(chart, env: str, options: AirflowOptions, preview: bool = False, oidc: bool = False) -> list[dict]:
    release = "airflow-feature-x" if preview else "airflow"
    tgt = target.Target(release, f"{release}-platform", release, preview)
    payload = chart_values.airflow_values(tgt, RUNTIME, {}, "digest", options, users_script="print()")
    if oidc:
        settings = parse_settings({"airflow": {"auth": {"oidc": {
            "provider": "sso", "client_id": "airflow", "client_secret": "s3cret-value-1234",
            "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
            "default_role": "Viewer"}}}},
            "settings/integration/secret.yaml")
        payload = chart_values.with_oidc(payload, release, settings.airflow.auth.oidc, "# config\n")
    assert official_chart.unknown_keys(pinned_schema(), payload) == []
    out = chart.render(values=merge_values(official_values(env), payload), name=release, namespace=release,
                       is_install=True)
    return [doc for path, text in sorted(out.items()) if not path.endswith("NOTES.txt") for doc in load_all(text)]


def api_container(objects: list[dict], release: str = "airflow") -> dict:
    spec = by_kind(objects, "Deployment")[f"{release}-api-server"]["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "api-server"]
    return container


def airflow_cfg(objects: list[dict], release: str = "airflow") -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(by_kind(objects, "ConfigMap")[f"{release}-config"]["data"]["airflow.cfg"])
    return cfg


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_environments_ingress_reaches_the_api_server(official_chart_release, env):
    options = config.load(ROOT, env).spec.airflow
    spec = options.ingress
    objects = rendered(official_chart_release, env, options, oidc=True)

    ing = by_kind(objects, "Ingress")["airflow-ingress"]["spec"]
    (rule,) = ing["rules"]
    assert rule["host"] == spec.host and ing["ingressClassName"] == "alb"
    (path,) = rule["http"]["paths"]
    assert path == {"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "airflow-api-server", "port": {"name": "api-server"}}}}
    assert "tls" not in ing  # managed: the ALB holds the ACM certificate
    assert by_kind(objects, "Ingress")["airflow-ingress"]["metadata"]["annotations"] == spec.annotations

    container = api_container(objects)
    assert container["command"] == ["/usr/bin/env"]
    assert container["args"] == ["bash", "-c", "exec airflow api-server --proxy-headers"]
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["FORWARDED_ALLOW_IPS"] == ",".join(spec.trusted_proxies)
    assert "AIRSTACK_OIDC" in env_vars  # with_oidc adds to the env, keeps FORWARDED_ALLOW_IPS

    cfg = airflow_cfg(objects)
    assert cfg["api"]["base_url"] == spec.url
    assert cfg["fab"]["enable_proxy_fix"] == "False"
    # The workers still reach the api-server's Execution API inside the cluster, not through the ingress.
    assert cfg["core"]["execution_api_server_url"] == "http://airflow-api-server:8080/execution/"
    assert_valid_kubernetes(objects, K8S_VERSIONS)


def test_a_tls_secret_becomes_the_ingress_tls(official_chart_release):
    ingress = Ingress(url="https://airflow.example.com", tls={"secret": "airflow-tls"}, class_name="nginx",
                      annotations={"cert-manager.io/cluster-issuer": "letsencrypt"})
    objects = rendered(official_chart_release, "production", AirflowOptions(ingress=ingress))
    ing = by_kind(objects, "Ingress")["airflow-ingress"]["spec"]
    assert ing["tls"] == [{"hosts": ["airflow.example.com"], "secretName": "airflow-tls"}]
    # No trusted proxy: the chart's own command line, no FORWARDED_ALLOW_IPS.
    container = api_container(objects)
    assert container["args"] == ["bash", "-c", "exec airflow api-server"]
    assert "FORWARDED_ALLOW_IPS" not in {e["name"] for e in container["env"]}
    assert_valid_kubernetes(objects, K8S_VERSIONS)


def test_without_an_ingress_or_in_a_preview_nothing_is_exposed_or_trusted(official_chart_release):
    with_ingress = config.load(ROOT, "integration").spec.airflow
    for objects, release in ((rendered(official_chart_release, "integration", AirflowOptions()), "airflow"),
                             (rendered(official_chart_release, "integration", with_ingress, preview=True),
                              "airflow-feature-x")):
        assert by_kind(objects, "Ingress") == {}
        container = api_container(objects, release)
        assert container["args"] == ["bash", "-c", "exec airflow api-server"]
        assert "FORWARDED_ALLOW_IPS" not in {e["name"] for e in container["env"]}
        assert not airflow_cfg(objects, release).has_option("api", "base_url")


def _hashed(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_a_deploy_passes_the_ingress_on_stdin(scratch_repo, helm_standin, monkeypatch, capsys):
    """`nox -s deploy-integration` with the committed deploy.yaml: the official chart's stdin carries the
    Ingress, the trusted proxies and base_url (the stand-in keeps stdin's leaves as digests)."""
    root, _ = scratch_repo
    helm_only_with_made_up_images(root, monkeypatch)
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, \
        capsys.readouterr().err
    (upgrade,) = [c for c in helm_standin() if c["argv"][:1] == ["upgrade"] and c["argv"][2] == "airflow"]
    stdin = upgrade["stdin"]
    spec = config.load(root, "integration").spec.airflow.ingress
    assert stdin["ingress"]["apiServer"]["hosts"] == [{"name": _hashed(spec.host)}]
    assert stdin["config"]["api"]["base_url"] == _hashed(spec.url)
    assert stdin["apiServer"]["env"][0]["value"] == _hashed(",".join(spec.trusted_proxies))


def test_oidc_behind_an_ingress_that_trusts_nobody_is_warned_about(scratch_repo, helm_standin, monkeypatch, capsys):
    """Settings with OIDC, deploy.yaml's ingress without trusted_proxies: the deploy says the callback will be
    http:// (a warning: an environment may add its proxies later), before anything changes."""
    from airstack.settings import store

    root, document = scratch_repo
    document["airflow"]["auth"] = {"oidc": {
        "provider": "sso", "client_id": "airflow", "client_secret": "s3cret-value-1234", "default_role": "Viewer",
        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration"}}
    store.save(root, "integration", document)
    path = root / "settings" / "integration" / "deploy.yaml"
    deploy = yaml.safe_load(path.read_text())
    deploy.pop("release")
    del deploy["airflow"]["ingress"]["trusted_proxies"]
    path.write_text(yaml.safe_dump(deploy))
    refs = {"airflow": "127.0.0.1:5000/t/airflow:0123456789ab", "etl-basic": "127.0.0.1:5000/t/etl-basic:ab"}
    monkeypatch.setattr(deployer, "images", lambda *a: deployer.Images(
        "127.0.0.1:5000/t", refs, [], dict.fromkeys(refs, "sha256:" + "0" * 64)))
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--dry-run"]) == 0, \
        capsys.readouterr().err
    out = " ".join(capsys.readouterr().out.split())
    assert ("warning: settings/integration/deploy.yaml: airflow.ingress.trusted_proxies: empty, so the api-server "
            "believes no X-Forwarded-Proto") in out, out
    assert [c for c in helm_standin() if c["argv"][:1] == ["upgrade"]] == []
