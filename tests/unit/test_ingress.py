"""deploy.yaml's ``airflow.ingress`` (airstack/settings/ingress.py) and its chart values (airstack/deploy/ingress.py):
the safe default, the one-line errors, and what a preview gets (pure; the real chart renders them in
tests/deploy/test_chart_ingress.py, a real proxy runs them in tests/integration/test_ingress_proxy.py)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from airstack.deploy import ingress
from airstack.errors import ConfigError
from airstack.settings import deploy_file
from airstack.settings.ingress import Ingress

FILE = "settings/integration/deploy.yaml"
GOOD = {"url": "https://airflow.example.com", "tls": {"managed": True}, "trusted_proxies": ["10.20.0.0/20"]}


def load_with(tmp_path: Path, section: dict) -> deploy_file.Environment:
    path = tmp_path / FILE
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"images": {"registry": "reg.example/airflow"}, "airflow": {"ingress": section}}))
    return deploy_file.load(tmp_path, "integration")


def test_no_ingress_section_changes_nothing(tmp_path):
    assert load_with(tmp_path, GOOD).spec.airflow.ingress is not None
    assert deploy_file.DeployFile(images={"registry": "r"}).airflow.ingress is None
    assert ingress.chart_values(None) == {}


def test_the_default_trusts_no_proxy():
    """Without trusted_proxies: the chart's own command line (no --proxy-headers), no FORWARDED_ALLOW_IPS."""
    values = ingress.chart_values(Ingress(url="https://airflow.example.com", tls={"secret": "airflow-tls"}))
    assert values["apiServer"] == {"args": ["bash", "-c", "exec airflow api-server"]}
    assert values["config"] == {"api": {"base_url": "https://airflow.example.com"},
                                "fab": {"enable_proxy_fix": "False"}}
    assert values["ingress"]["apiServer"]["hosts"] == [
        {"name": "airflow.example.com", "tls": {"enabled": True, "secretName": "airflow-tls"}}]


def test_trusted_proxies_turn_on_proxy_headers_for_those_addresses_only():
    spec = Ingress(url="https://airflow.example.com:8443/", tls={"managed": True}, class_name="nginx",
                   annotations={"a/b": "c"}, trusted_proxies=["10.20.0.0/20", "10.20.16.7", "fd00::/64"])
    values = ingress.chart_values(spec)
    assert values["apiServer"]["args"] == ["bash", "-c", "exec airflow api-server --proxy-headers"]
    assert values["apiServer"]["env"] == [{"name": "FORWARDED_ALLOW_IPS", "value": "10.20.0.0/20,10.20.16.7,fd00::/64"}]
    assert values["config"]["api"]["base_url"] == "https://airflow.example.com:8443"
    assert values["ingress"]["apiServer"] == {"enabled": True, "hosts": [{"name": "airflow.example.com"}], "path": "/",
                                              "pathType": "Prefix", "annotations": {"a/b": "c"},
                                              "ingressClassName": "nginx"}


def test_the_options_stay_hashable():
    """deploy.yaml's options are frozen and hashable (tests cache renderings by them)."""
    root = Path(__file__).resolve().parents[2]
    options = deploy_file.load(root, "integration").spec.airflow
    assert hash(options) == hash(deploy_file.load(root, "integration").spec.airflow)
    assert hash(Ingress(**GOOD)) != hash(Ingress(**{**GOOD, "trusted_proxies": ["10.20.0.0/21"]}))


def test_a_preview_gets_no_ingress():
    """It would claim integration's host."""
    assert ingress.chart_values(Ingress(**GOOD), preview=True) == {}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"url": "http://airflow.example.com"}, "url", "the public URL is https://"),
    ({"url": "https://airflow.example.com/airflow"}, "url", "no path, query or fragment"),
    ({"url": "https://Airflow_Example"}, "url", "not https://HOST[:PORT]"),
    ({"url": "https://Airflow.example.com"}, "url", "HOST a lowercase DNS name"),
    ({"url": "https://user@airflow.example.com"}, "url", "HOST a lowercase DNS name"),
    ({"url": "https://airflow.example.com:http"}, "url", "the port is not a number"),
    ({"tls": {}}, "tls", "name the certificate's Secret (secret: NAME) or say the controller holds it"),
    ({"tls": {"secret": "x", "managed": True}}, "tls", "one of the two"),
    ({"trusted_proxies": ["10.20.0.0/20", "0.0.0.0/0"]}, "trusted_proxies[1]", "trusts every address"),
    ({"trusted_proxies": ["*"]}, "trusted_proxies[0]", "'*' is not an IP address or network"),
    ({"trusted_proxies": ["10.20.0.1/16"]}, "trusted_proxies[0]", "has host bits set"),
    ({"trusted_proxies": ["ingress-nginx"]}, "trusted_proxies[0]", "is not an IP address or network"),
    ({"proxies": ["10.0.0.0/8"]}, "proxies", "Extra inputs are not permitted"),
])
def test_a_bad_value_is_one_line_naming_the_file_and_field(tmp_path, change, field, message):
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, {**GOOD, **change})
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{FILE}: airflow.ingress.{field}: ") and message in line, line


def test_oidc_behind_an_ingress_that_trusts_nobody_is_warned_about():
    trusting, untrusting = Ingress(**GOOD), Ingress(**{**GOOD, "trusted_proxies": []})
    (line,) = ingress.problems(FILE, untrusting, oidc=True)
    assert line.startswith(f"{FILE}: airflow.ingress.trusted_proxies: empty") and "IdP refuses" in line
    assert ingress.problems(FILE, untrusting, oidc=False) == []
    assert ingress.problems(FILE, trusting, oidc=True) == []
    assert ingress.problems(FILE, None, oidc=True) == []


@pytest.mark.parametrize("env", ["integration", "production"])
def test_the_committed_environments_trust_their_public_subnets_only(env):
    """The ALB reaches the pods from the public subnets (parameters/<env>.yaml); never the private ones,
    where the task pods run."""
    root = Path(__file__).resolve().parents[2]
    spec = deploy_file.load(root, env).spec.airflow.ingress
    parameters = yaml.safe_load((root / f"infra/cloudformation/parameters/{env}.yaml").read_text())["network"]
    assert spec.trusted_proxies == [parameters["PublicSubnet1Cidr"], parameters["PublicSubnet2Cidr"]]
    private = [ipaddress.ip_network(parameters[f"PrivateSubnet{i}Cidr"]) for i in (1, 2)]
    assert not [p for p in spec.trusted_proxies for net in private if ipaddress.ip_network(p).overlaps(net)]
    assert spec.url.startswith("https://") and spec.tls.managed
