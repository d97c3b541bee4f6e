"""charts/platform (our chart): rendered and linted by the real Helm 4 engine, each manifest validated strictly
against Kubernetes' OpenAPI schemas, with each environment's values file and a payload of random secrets.
"""

from __future__ import annotations

import re

import helm_python
import pytest

from airstack.settings import render as settings_render
from tests.deploy.charts.render import (ENVIRONMENTS, K8S_VERSIONS, NAMESPACE, PLATFORM, assert_valid_kubernetes,
                                        by_kind, decoded, kpo_claim_defaults, load_yaml, platform_values,
                                        random_payload, render)

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/",)


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_manifests_validate_against_kubernetes(platform_chart, env, k8s_version):
    objects = render(platform_chart, platform_values(env, random_payload()))
    assert {obj["kind"] for obj in objects} == {"Secret", "ConfigMap", "PersistentVolumeClaim", "NetworkPolicy"}
    assert_valid_kubernetes(objects, [k8s_version])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_secrets_decode_to_the_payload(platform_chart, env):
    payload = random_payload(release="af-" + env[:4])
    objects = render(platform_chart, platform_values(env, payload))
    secrets_, config_maps = by_kind(objects, "Secret"), by_kind(objects, "ConfigMap")
    keys_name, env_name = settings_render.secret_names(payload["airflowRelease"])

    assert decoded(secrets_[keys_name]) == payload["settings"]["keys"]
    assert decoded(secrets_[env_name]) == payload["settings"]["env"]
    assert decoded(secrets_[f"{payload['airflowRelease']}-metadata"]) == {
        "connection": payload["settings"]["metadataConnection"]}
    # What the official chart's data.brokerUrlSecretName reads: key `connection`, the broker URL.
    assert decoded(secrets_[f"{payload['airflowRelease']}-broker"]) == {
        "connection": payload["settings"]["celeryBrokerUrl"]}
    assert decoded(secrets_[f"{payload['airflowRelease']}-users"]) == {"users.json": payload["settings"]["users"]}
    assert decoded(secrets_[f"{payload['airflowRelease']}-oidc"]) == {
        "client-secret": payload["settings"]["oidcClientSecret"]}
    assert decoded(secrets_["example1"]) == payload["projects"]["example1"]["secret"]
    assert config_maps["example1"]["data"] == payload["projects"]["example1"]["config"]
    assert set(secrets_) == {keys_name, env_name, f"{payload['airflowRelease']}-metadata",
                             f"{payload['airflowRelease']}-broker", f"{payload['airflowRelease']}-users",
                             f"{payload['airflowRelease']}-oidc", "example1"}
    assert all(secret["type"] == "Opaque" for secret in secrets_.values())


def test_every_platform_object_carries_the_labels(platform_chart):
    for obj in render(platform_chart, platform_values("production", random_payload())):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["metadata"]["name"]
        assert labels["app.kubernetes.io/part-of"] == "airstack", obj["metadata"]["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_volumes_are_the_claims_kpo_mounts(platform_chart, env):
    claims = by_kind(render(platform_chart, platform_values(env, random_payload())), "PersistentVolumeClaim")
    kpo = kpo_claim_defaults()
    # No DAG volume: DAGs come from the DAG bundle, task scripts travel in the pod (kpo.py).
    assert set(claims) == {kpo["DATA_CLAIM"], "airflow-logs"}
    assert "DAGS_CLAIM" not in kpo

    env_volumes = load_yaml(PLATFORM / f"values-{env}.yaml")["volumes"]
    for volume, claim in (("data", kpo["DATA_CLAIM"]), ("logs", "airflow-logs")):
        spec = claims[claim]["spec"]
        assert spec["accessModes"] == ["ReadWriteMany"], claim  # pods of several nodes share them
        assert spec["storageClassName"] == env_volumes[volume]["storageClassName"], claim
        assert spec["resources"]["requests"]["storage"] == env_volumes[volume]["size"], claim
        # `helm uninstall` must not take DAGs, data or logs with it.
        assert claims[claim]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", claim


@pytest.mark.parametrize("bad_name", ["Example1", "example_1", "-example", "x" * 64])
def test_project_names_must_be_dns_labels(platform_chart, bad_name):
    values = platform_values("integration", random_payload())
    values["projects"] = {bad_name: {"config": {"REPORT_CURRENCY": "EUR"}}}
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(f"'{bad_name}'")):
        platform_chart.render(values=values, name="platform", namespace=NAMESPACE)
    # helm lint (what CI and users run) reports it too.
    report = helm_python.lint(PLATFORM, values=values)
    assert any(bad_name in error for error in report["errors"]), report


@pytest.mark.parametrize(("section", "key"), [("config", "REPORT-CURRENCY"), ("secret", "1TOKEN"), ("config", "A B")])
def test_project_keys_must_be_environment_variable_names(platform_chart, section, key):
    values = platform_values("integration", random_payload())
    values["projects"]["example1"][section] = {key: "x"}
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(f"'{key}'")):
        platform_chart.validate_schema(values)


@pytest.mark.parametrize("key", ["PATH", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_CONN_"])
def test_settings_env_only_takes_connections_and_variables(platform_chart, key):
    values = platform_values("integration", random_payload())
    values["settings"]["env"] = {key: "x"}
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(f"'{key}'")):
        platform_chart.validate_schema(values)


def test_nothing_empty_is_rendered(platform_chart):
    payload = random_payload()
    payload["settings"] = {"keys": {}, "env": {}, "metadataConnection": "", "celeryBrokerUrl": "", "users": "",
                           "oidcClientSecret": ""}
    payload["projects"] = {"example1": {"config": {"REPORT_CURRENCY": "EUR"}, "secret": {}},
                           "quiet": {"config": {}, "secret": {}}, "bare": {}}
    objects = render(platform_chart, platform_values("integration", payload))
    assert by_kind(objects, "Secret") == {}
    assert set(by_kind(objects, "ConfigMap")) == {"example1"}
    assert len(by_kind(objects, "PersistentVolumeClaim")) == 2


@pytest.mark.parametrize("name", ["airflow-metadata", "airflow-broker", "airflow-users", "airflow-oidc"])
def test_a_project_cannot_replace_a_platform_secret(platform_chart, name):
    values = platform_values("integration", random_payload())
    values["projects"] = {name: {"secret": {"TOKEN": "x"}}}
    with pytest.raises(helm_python.HelmRenderError, match=name):
        platform_chart.render(values=values, name="platform", namespace=NAMESPACE)


@pytest.mark.parametrize("url", ["", None])
def test_the_broker_secret_needs_a_url(platform_chart, url):
    """Only a Celery deploy passes a broker URL: without one (or with the chart's default), no Secret."""
    values = platform_values("integration", random_payload())
    if url is None:
        del values["settings"]["celeryBrokerUrl"]  # the chart's own default
    else:
        values["settings"]["celeryBrokerUrl"] = url
    assert "airflow-broker" not in by_kind(render(platform_chart, values), "Secret")


def test_the_broker_url_must_be_a_url(platform_chart):
    values = platform_values("integration", random_payload())
    values["settings"]["celeryBrokerUrl"] = "broker.internal:6379"
    with pytest.raises(helm_python.HelmValuesError, match="celeryBrokerUrl"):
        platform_chart.validate_schema(values)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_chart_lints_clean(env):
    report = helm_python.lint(PLATFORM, values=platform_values(env, random_payload()), namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert report["errors"] == [] and problems == [], report


def test_the_platform_chart_renders_no_job(platform_chart):
    """DAGs no longer reach the cluster from the runtime image: no dags-sync hook, nothing to copy."""
    assert by_kind(render(platform_chart, platform_values("production", random_payload())), "Job") == {}
    assert not (PLATFORM / "files" / "sync_dags.py").exists()
