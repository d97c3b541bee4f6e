"""charts/airflow as data: values for the official chart, installed by version and not vendored, checked
against the pinned release's values.schema.json, the platform chart, the runtime image and the deploy payload.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from airstack.deploy import auth_policy, chart_values, target
from airstack.deploy.chart_values import merge_values
from airstack.settings import render as settings_render
from tests.deploy import official_chart
from tests.deploy.charts.render import (_CREDENTIAL_URL, _FERNET_KEY, AIRFLOW_COMPONENTS, DEPLOY_KEYS, ENVIRONMENTS,
                                        OFFICIAL, PLATFORM, ROOT, SECRET_KEYS, _every_option, _quantity, _verified,
                                        by_kind, celery_set, dockerfile_instruction, leaf_paths, load_yaml,
                                        official_values, pinned_schema, platform_values, random_payload, render,
                                        runtime_pin)

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/",)


@pytest.mark.parametrize("file", ["values.yaml", *(f"values-{env}.yaml" for env in ENVIRONMENTS)])
def test_official_values_only_use_keys_of_the_pinned_chart(file):
    values = load_yaml(OFFICIAL / file)
    assert values, f"{file} is empty"
    version = official_chart.pinned()[0]
    unknown = official_chart.unknown_keys(pinned_schema(), values)
    assert unknown == [], f"{file}: keys chart {version} does not have (it would ignore them): {unknown}"
    deploy_owned = [path for path, _ in leaf_paths(values) if _verified(path, DEPLOY_KEYS)]
    assert deploy_owned == [], f"{file}: set by the deploy on stdin, not in files: {deploy_owned}"


def test_the_key_check_finds_a_key_of_another_chart_version():
    """The check bites: main's `workers.kubernetes.resources` is not a key of 1.19.0, nor is a typo."""
    values = {"workers": {"kubernetes": {"resources": {"requests": {"memory": "1Gi"}}}},
              "scheduler": {"resources": {"requests": {"cpu": "1"}, "limit": {}}}, "config": {"core": {"x": "y"}}}
    assert official_chart.unknown_keys(pinned_schema(), values) == [
        "workers.kubernetes.resources", "scheduler.resources.limit"]


@pytest.mark.parametrize("options", _every_option(), ids=lambda o: o.executor)
def test_the_deploy_payload_only_uses_keys_of_the_pinned_chart(options):
    """What the deploy pipes to the official chart, whatever deploy.yaml switches on, uses its keys only."""
    values = chart_values.airflow_values(target.Target("airflow", "airflow-platform", "airflow"),
                                         "reg/airflow:tag", {"etl-basic": "reg/etl-basic:t"}, "digest", options)
    assert official_chart.unknown_keys(pinned_schema(), values) == []
    assert {path for path, _ in leaf_paths(values) if _verified(path, DEPLOY_KEYS)}, "the payload sets no deploy key"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_official_values_run_the_kubernetes_executor_on_an_external_db(platform_chart, env):
    values = official_values(env)
    assert values["executor"] == "KubernetesExecutor"
    assert values["postgresql"]["enabled"] is False
    # The metadata Secret it names is the one the platform chart makes, with the key it reads.
    objects = render(platform_chart, platform_values(env, random_payload()))
    metadata = by_kind(objects, "Secret")[values["data"]["metadataSecretName"]]
    assert set(metadata["data"]) == {"connection"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_official_values_mount_the_platform_volumes(platform_chart, env):
    values = official_values(env)
    claims = by_kind(render(platform_chart, platform_values(env, random_payload())), "PersistentVolumeClaim")
    # DAGs from the DAG bundle (the deploy's dagProcessor.dagBundleConfigList), never a volume or git-sync.
    assert values["dags"]["persistence"]["enabled"] is False
    assert values["dags"]["gitSync"]["enabled"] is False
    assert values["logs"]["persistence"]["enabled"] is True
    assert values["logs"]["persistence"]["existingClaim"] in claims


@pytest.mark.parametrize("file", ["values.yaml", *(f"values-{env}.yaml" for env in ENVIRONMENTS)])
def test_official_values_hold_no_secrets(file):
    for path, value in leaf_paths(load_yaml(OFFICIAL / file)):
        assert path.rsplit(".", 1)[-1] not in SECRET_KEYS, f"{file}: {path} holds a secret"
        for item in value if isinstance(value, list) else [value]:
            text = str(item)
            assert not _CREDENTIAL_URL.search(text), f"{file}: {path} has a URL with credentials"
            assert not _FERNET_KEY.match(text), f"{file}: {path} looks like a Fernet key"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_deploy_payload_stops_the_chart_generating_keys(platform_chart, env):
    """The chart makes its own API secret key and JWT secret on every upgrade unless it is told
    which Secret holds them (apache/airflow#17398): the files plus the deploy's stdin must name
    Secrets the platform chart makes, with the keys the chart reads."""
    release = "airflow"
    values = merge_values(official_values(env), settings_render.chart_values(release))
    objects = render(platform_chart, platform_values(env, random_payload(release)))
    secrets_ = by_kind(objects, "Secret")
    for name_key, data_key in (("fernetKeySecretName", "fernet-key"), ("apiSecretKeySecretName", "api-secret-key"),
                               ("jwtSecretName", "jwt-secret")):
        assert data_key in secrets_[values[name_key]]["data"], name_key
    env_from = yaml.safe_load(values["extraEnvFrom"])
    assert [ref["secretRef"]["name"] for ref in env_from] == [settings_render.secret_names(release)[1]]
    assert env_from[0]["secretRef"]["name"] in secrets_


def test_official_values_match_the_runtime_lock():
    values = load_yaml(OFFICIAL / "values.yaml")
    pinned = runtime_pin("apache-airflow")
    assert pinned and values["airflowVersion"] == pinned == values["defaultAirflowTag"]
    assert load_yaml(PLATFORM / "Chart.yaml")["appVersion"] == pinned
    # Deploys run FAB's auth manager: its provider is in the runtime lock (so in the runtime image).
    assert values["config"]["core"]["auth_manager"] == auth_policy.FAB_AUTH_MANAGER
    assert re.search(r"^apache-airflow-providers-fab==", (ROOT / "requirements" / "runtime.txt").read_text(), re.M)
    assert values["createUserJob"]["enabled"] is False  # users come from settings, not a default password
    for env in ENVIRONMENTS:
        assert auth_policy.auth_problems([("values.yaml", values),
                                          (f"values-{env}.yaml", load_yaml(OFFICIAL / f"values-{env}.yaml"))]) == []


def test_production_serves_the_api_from_two_pods():
    api = official_values("production")["apiServer"]
    assert api["replicas"] >= 2 and api["podDisruptionBudget"]["enabled"] is True


def test_official_values_start_the_runtime_image_the_way_it_runs():
    """The chart passes `args` and relies on the apache/airflow image's /entrypoint; images/airflow
    has ENTRYPOINT ["airflow"] and no /entrypoint, so every container needs a command."""
    (entrypoint,) = dockerfile_instruction("ENTRYPOINT")
    values = load_yaml(OFFICIAL / "values.yaml")
    if json.loads(entrypoint) != ["airflow"]:
        pytest.skip(f"images/airflow's ENTRYPOINT is {entrypoint}: these overrides may no longer be needed")
    for section in (*AIRFLOW_COMPONENTS, "migrateDatabaseJob"):
        assert values[section]["command"] == ["/usr/bin/env"], section
    assert values["workers"]["kubernetes"]["command"] == ["/usr/bin/env"]
    for component in AIRFLOW_COMPONENTS:
        assert values[component]["waitForMigrations"]["enabled"] is False, component
    for component in ("scheduler", "triggerer", "dagProcessor"):  # the chart's log groomers run /clean-logs
        groomer = values[component]["logGroomerSidecar"]
        assert groomer["enabled"] is False or (groomer["command"] and "/clean-logs" not in groomer["args"]), component
    probes = [values[c][p]["command"] for c in AIRFLOW_COMPONENTS for p in ("livenessProbe", "startupProbe")
              if c != "apiServer" and p in values[c]]
    assert len(probes) == 4
    for probe in probes:
        assert "/entrypoint" not in " ".join(probe)
        assert "exec airflow jobs check --job-type" in probe[-1], probe
    # The migration Job is not a hook: `helm upgrade --atomic` waits for pods that wait for it.
    assert values["migrateDatabaseJob"]["useHelmHooks"] is False


def test_production_has_more_replicas_and_resources_than_integration():
    integration, production = official_values("integration"), official_values("production")
    sections = [*AIRFLOW_COMPONENTS, "migrateDatabaseJob"]
    for section in sections:
        for kind in ("requests", "limits"):
            for resource, amount in integration[section]["resources"][kind].items():
                assert _quantity(production[section]["resources"][kind][resource]) >= _quantity(amount), (
                    section, kind, resource)
    replicas = {c: (integration[c]["replicas"], production[c]["replicas"]) for c in AIRFLOW_COMPONENTS}
    assert all(prod >= integ for integ, prod in replicas.values()), replicas
    assert any(prod > integ for integ, prod in replicas.values()), replicas
    for component in AIRFLOW_COMPONENTS:
        if production[component]["replicas"] > 1:
            assert production[component]["podDisruptionBudget"]["enabled"] is True, component
    for workers in (lambda v: v["workers"], celery_set):  # task pods, Celery workers
        assert _quantity(workers(production)["resources"]["requests"]["memory"]) >= _quantity(
            workers(integration)["resources"]["requests"]["memory"])
    assert celery_set(production)["replicas"] >= celery_set(integration)["replicas"] >= 1
