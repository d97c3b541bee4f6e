"""The Helm side of the deploy: charts/platform and charts/airflow.

- charts/platform (our chart) is rendered and linted by the real Helm 4 engine of the
  helm-python-sdk wheel, with each environment's values file plus a stdin-style payload of
  random secrets, and every manifest is validated against Kubernetes' own OpenAPI schemas
  (kubernetes-validate, strict: unknown fields are errors).
- charts/airflow holds values for the official apache-airflow chart, which is installed by
  version and not vendored, so they are checked as data: against the platform chart they point
  at, the runtime image they run, the deploy payload that completes them, and the list of chart
  keys checked against the chart's values.schema.json.
"""

from __future__ import annotations

import ast
import base64
import configparser
import copy
import functools
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml

from airstack.deploy import auth_policy, chart_values, target
from airstack.deploy.chart_values import merge_values
from airstack import git_bundle
from airstack import verdict
from airstack.deploy import config
from airstack.settings.deploy_file import AirflowOptions, DagBundle
from airstack.settings import render as settings_render
from tests.deploy import official_chart

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "charts" / "platform"
OFFICIAL = ROOT / "charts" / "airflow"
ENVIRONMENTS = ("integration", "production")
NAMESPACE = "airflow"
# The oldest Kubernetes minor EKS still supports when this was written, and the newest schema
# kubernetes-validate bundles.
K8S_VERSIONS = ("1.31", kubernetes_validate.latest_version())
AIRFLOW_COMPONENTS = ("scheduler", "apiServer", "triggerer", "dagProcessor")


# --- helpers ------------------------------------------------------------------------------

# libyaml's parser where PyYAML has it: the rendered charts are hundreds of documents per test.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_LOADER) or {}


def load_all(text: str) -> list:
    return [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc]


def kpo_claim_defaults() -> dict[str, str]:
    """DAGS_CLAIM/DATA_CLAIM defaults of dags/common/kpo.py, read with ast: importing it imports
    Airflow and the kubernetes client, seconds the charts lane does without."""
    tree = ast.parse((ROOT / "dags" / "common" / "kpo.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
            if isinstance(value, ast.Constant):
                found[name] = value.value
            elif isinstance(value, ast.Call) and len(value.args) == 2:  # os.environ.get(NAME, default)
                found[name] = ast.literal_eval(value.args[1])
    return found


def runtime_pin(package: str) -> str | None:
    """The version requirements/runtime.in pins for ``package`` (extras ignored), if any."""
    for line in (ROOT / "requirements" / "runtime.in").read_text().splitlines():
        match = re.match(rf"^{re.escape(package)}(\[[^\]]*\])?\s*==\s*([^\s;#]+)", line.strip())
        if match:
            return match.group(2)
    return None


def dockerfile_instruction(name: str) -> list[str]:
    lines = (ROOT / "images" / "airflow" / "Dockerfile").read_text().splitlines()
    return [line.split(None, 1)[1] for line in lines if line.upper().startswith(name + " ")]


def random_payload(release: str = "airflow") -> dict:
    """What the deploy pipes to `helm upgrade -f -` from decrypted settings: fresh random secrets."""
    return {
        "airflowRelease": release,
        "settings": {
            "keys": {
                "fernet-key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "api-secret-key": secrets.token_urlsafe(32),
                "jwt-secret": secrets.token_urlsafe(48),
            },
            "env": {
                "AIRFLOW_CONN_WAREHOUSE_DB": json.dumps({"conn_type": "postgres", "host": "db.internal", "login": "etl",
                                                         "password": secrets.token_urlsafe(16)}),
                "AIRFLOW_VAR_ENVIRONMENT": "test",
            },
            "metadataConnection": f"postgresql+psycopg2://airflow:{secrets.token_urlsafe(16)}@db.internal:5432/airflow",
            "celeryBrokerUrl": f"rediss://:{secrets.token_urlsafe(16)}@broker.internal:6379/0?ssl_cert_reqs=required",
            "users": json.dumps([{"username": "ada", "role": "Admin", "email": "ada@example.invalid",
                                  "first_name": "Ada", "last_name": "L", "password": secrets.token_urlsafe(16)}]),
            "oidcClientSecret": secrets.token_urlsafe(24),
        },
        "projects": {
            "example1": {"config": {"REPORT_CURRENCY": "EUR", "MIN_ORDER_AMOUNT": "10"},
                         "secret": {"API_TOKEN": secrets.token_urlsafe(24)}},
        },
    }


def platform_values(env: str, payload: dict) -> dict:
    return merge_values(load_yaml(PLATFORM / f"values-{env}.yaml"), payload)


def official_values(env: str) -> dict:
    return merge_values(load_yaml(OFFICIAL / "values.yaml"), load_yaml(OFFICIAL / f"values-{env}.yaml"))


@pytest.fixture(scope="module")
def platform_chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(PLATFORM) as chart:
        yield chart


def render(chart: helm_python.Chart, values: dict) -> list[dict]:
    """The platform chart's manifests (NOTES.txt aside), as Kubernetes objects."""
    rendered = chart.render(values=values, name="platform", namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(rendered.items()):
        if not path.endswith("NOTES.txt"):
            objects.extend(load_all(text))
    return objects


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def decoded(secret: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}


def assert_valid_kubernetes(objects: list[dict], k8s_versions) -> None:
    """Every object validates strictly against each Kubernetes version's schemas; a failure names it."""
    for obj in objects:
        for k8s_version in k8s_versions:
            try:
                kubernetes_validate.validate(obj, k8s_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} is not valid Kubernetes {k8s_version}: {exc}")


# --- charts/platform: rendered by Helm, validated by Kubernetes' schemas -------------------

@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_manifests_validate_against_kubernetes(platform_chart, env, k8s_version):
    objects = render(platform_chart, platform_values(env, random_payload()))
    assert {obj["kind"] for obj in objects} == {"Secret", "ConfigMap", "PersistentVolumeClaim"}
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


# --- charts/airflow: values for the official chart -----------------------------------------

# Every key path the files and the deploy's payload set must be one the pinned release declares in
# its values.schema.json (tests/deploy/fixtures/airflow-chart-<version>.values.schema.json, the
# version deploy.yaml pins): a key of another version (`workers.kubernetes.resources` is main's, not
# 1.19.0's) is one the chart silently ignores.
# What only the deploy sets, on stdin: the runtime image, airstack.settings.render.chart_values(), the
# Airflow pods' environment and annotation, the broker Secret's name (chart keys all the same).
DEPLOY_KEYS = {"images.airflow.repository", "images.airflow.tag", "images.airflow.digest", "images.pod_template.*",
               "images.flower.*", "config.kubernetes.worker_container_repository",
               "config.kubernetes.worker_container_tag", "config.kubernetes_executor.worker_container_repository",
               "config.kubernetes_executor.worker_container_tag", "fernetKeySecretName", "apiSecretKeySecretName",
               "jwtSecretName", "extraEnvFrom", "env", "airflowPodAnnotations.*", "data.brokerUrlSecretName"}
SECRET_KEYS = {"fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey", "password", "pass",
               "postgresPassword", "brokerUrl", "connection", "sshKey", "keytabBase64Content"}


def leaf_paths(values: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, path + ".")
        else:
            yield path, value


def _verified(path: str, keys: set[str]) -> bool:
    return path in keys or any(key.endswith(".*") and path.startswith(key[:-1]) for key in keys)


def pinned_schema() -> dict:
    return official_chart.schema(official_chart.pinned()[0])


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


def _every_option() -> list[AirflowOptions]:
    """Each switch of deploy.yaml's airflow section on, and everything off."""
    store = {"base": "s3://bucket-x/prefix", "conn_id": "aws_x"}
    return [AirflowOptions(), AirflowOptions(executor="LocalExecutor"),
            AirflowOptions(executor="CeleryExecutor", remote_logging=store, storage=store,
                           metrics={"statsd": True, "prometheus_rules": True})]


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


_CREDENTIAL_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_FERNET_KEY = re.compile(r"^[A-Za-z0-9_-]{43}=$")


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


def _quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if str(value).endswith(suffix):
            return float(str(value)[:-len(suffix)]) * factor
    return float(value)


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


def celery_set(values: dict) -> dict:
    """The Celery worker set that replaces the chart's default one (charts/airflow/values-<env>.yaml)."""
    assert values["workers"]["celery"]["enableDefault"] is False
    (default,) = [s for s in values["workers"]["celery"]["sets"] if s["name"] == "default"]
    return default


# --- charts/airflow rendered: the official chart at the pinned release, by the real Helm engine ---
# The chart's source comes from tests/deploy/official_chart.py (a folder given, a cache, or its
# repository); where none can be had, these skip as lacking the capability `official-chart`
# (airstack.verdict), say how to provide it, and the gate reads `partial` (CI, AIRSTACK_REQUIRE: a failure).

EXECUTORS = ("KubernetesExecutor", "CeleryExecutor")
# Kubernetes' limits on names: a DNS-1123 subdomain (253) for most kinds; a label (63) for a Service
# (DNS-1035), a Namespace and a Job (its name is its pods' job-name label); 52 for a CronJob (its
# controller appends 11 characters to name Jobs) and a StatefulSet (its pods' controller-revision-hash
# label is the name plus 11 characters). Every label value: 63.
DNS_LABEL_MAX = 63
NAME_MAX = {"Service": DNS_LABEL_MAX, "Namespace": DNS_LABEL_MAX, "Job": DNS_LABEL_MAX, "CronJob": 52,
            "StatefulSet": 52}
SUBDOMAIN_MAX = 253


@pytest.fixture(scope="module")
def official_chart_release() -> Iterator[helm_python.Chart]:
    version, repository = official_chart.pinned()
    path, why = official_chart.source(version, repository)
    if path is None:
        pytest.skip(verdict.lacking("official-chart", why))  # the gate's charts lane reads `partial`
    with helm_python.Chart.load(path) as chart:
        assert (chart.name, chart.version) == ("airflow", version), f"{path} is not chart airflow {version}"
        yield chart


def every_option(executor: str) -> AirflowOptions:
    store = {"base": "s3://bucket-x/prefix"}
    return AirflowOptions(executor=executor, remote_logging=store, storage=store,
                          metrics={"statsd": True, "prometheus_rules": True})


def render_official(chart: helm_python.Chart, env: str, options: AirflowOptions,
                    release: str = "airflow") -> list[dict]:
    """The official chart's manifests for an environment's files plus the deploy's stdin payload (a copy of
    one rendering per arguments: several tests look at the same one)."""
    return copy.deepcopy(_render_official(chart, env, options, release))


@functools.cache
def _render_official(chart: helm_python.Chart, env: str, options: AirflowOptions, release: str) -> list[dict]:
    tgt = target.Target(release, f"{release}-platform", release)
    payload = chart_values.airflow_values(tgt, "registry.example/airflow:0123abcd", {"etl-basic": "r/e:t"},
                                          "digest", options, dag_bundles=dag_bundles(release))
    rendered = chart.render(values=merge_values(official_values(env), payload), name=release, namespace=release,
                            is_install=True)
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in load_all(text)]


def dag_bundles(release: str = "airflow") -> list[dict]:
    """What a deploy passes: the GitDagBundle on the environment's deploy ref (airstack/git_bundle.py)."""
    bundle = DagBundle(kind="git", repository="https://git.example/team/airflow.git", refresh_interval=30)
    ref = git_bundle.deploy_ref("integration", None if release == "airflow" else release)
    return git_bundle.config_list(bundle, ref, bundle.repository)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_dag_bundle_reaches_airflow_cfg_and_the_task_pods(official_chart_release, env):
    """dagProcessor.dagBundleConfigList becomes [dag_processor] dag_bundle_config_list in airflow.cfg, the one
    config every component and (mounted by the pod template) every KubernetesExecutor task pod reads."""
    objects = render_official(official_chart_release, env, AirflowOptions())
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(by_kind(objects, "ConfigMap")["airflow-config"]["data"]["airflow.cfg"])
    listed = json.loads(cfg["dag_processor"]["dag_bundle_config_list"])
    assert listed == dag_bundles()
    (bundle,) = listed
    assert bundle["classpath"] == "airflow.providers.git.bundles.git.GitDagBundle"
    assert bundle["kwargs"]["tracking_ref"] == "airstack/dags/integration" and bundle["kwargs"]["subdir"] == "dags"
    task_pod = pod_template(objects)
    mounts = [m for c in task_pod["spec"]["containers"] for m in c.get("volumeMounts", [])]
    assert any(m.get("subPath") == "airflow.cfg" for m in mounts), mounts
    # No DAG volume anywhere: the bundle is the only source of DAGs.
    assert not [v for o in objects for v in (o.get("spec", {}).get("template", {}).get("spec", {})
                                             .get("volumes") or []) if v.get("name") == "dags"]


def pod_template(objects: list[dict], release: str = "airflow") -> dict:
    """The KubernetesExecutor's task pod: pod_template_file.yaml of the chart's `<release>-config` ConfigMap."""
    return yaml.safe_load(by_kind(objects, "ConfigMap")[f"{release}-config"]["data"]["pod_template_file.yaml"])


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_official_chart_renders_valid_kubernetes(official_chart_release, env, executor):
    objects = render_official(official_chart_release, env, AirflowOptions(executor=executor))
    version = official_chart.pinned()[0]
    # The chart labels what it makes with its own version: this is the release deploy.yaml pins.
    assert {o["metadata"]["labels"].get("chart") for o in objects} >= {f"airflow-{version}"}
    if executor == "KubernetesExecutor":
        objects = [*objects, pod_template(objects)]
    assert_valid_kubernetes(objects, K8S_VERSIONS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_task_pods_get_the_task_sizing(official_chart_release, env):
    """KubernetesExecutor: each task's pod gets `workers.resources` (chart 1.19.0's pod template)."""
    written = official_values(env)["workers"]["resources"]
    (container,) = [c for c in pod_template(render_official(official_chart_release, env, AirflowOptions()))
                    ["spec"]["containers"] if c["name"] == "base"]
    assert container["resources"] == written
    # Not the Celery workers' sizing, which is larger.
    assert _quantity(celery_set(official_values(env))["resources"]["requests"]["memory"]) > _quantity(
        container["resources"]["requests"]["memory"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_celery_workers_get_the_celery_sizing(official_chart_release, env):
    objects = render_official(official_chart_release, env, AirflowOptions(executor="CeleryExecutor"))
    workers = {name: obj for name, obj in by_kind(objects, "Deployment").items() if "worker" in name}
    assert set(workers) == {"airflow-worker"}  # one worker Deployment, the chart's default name
    written = celery_set(official_values(env))
    worker = workers["airflow-worker"]
    assert worker["spec"]["replicas"] == written["replicas"]
    (container,) = [c for c in worker["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    assert container["resources"] == written["resources"]
    assert "pod_template_file.yaml" not in by_kind(objects, "ConfigMap")["airflow-config"]["data"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_official_chart_renders_no_secret_of_its_own(official_chart_release, executor):
    """Every Secret comes from the platform chart (settings, metadata, broker): the official chart
    renders none, in particular not its `<release>-broker-url` hook Secret with `%!s(<nil>)`."""
    for env in ENVIRONMENTS:
        objects = render_official(official_chart_release, env, every_option(executor))
        assert by_kind(objects, "Secret") == {}, (env, executor)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_server_pods_sync_users_from_the_platform_secrets(official_chart_release, platform_chart, env):
    """The sync-users init container renders as the deploy builds it (the chart passes init containers
    through `tpl`), and every Secret it reads is one the platform chart makes from settings."""
    script = (ROOT / chart_values.USERS_SCRIPT).read_text()
    tgt = target.Target("airflow", "airflow-platform", "airflow")
    payload = chart_values.airflow_values(tgt, "registry.example/airflow:0123abcd", {}, "digest",
                                          users_script=script)
    rendered = official_chart_release.render(values=merge_values(official_values(env), payload), name="airflow",
                                             namespace="airflow", is_install=True)
    objects = [d for p, t in rendered.items() if not p.endswith("NOTES.txt") for d in load_all(t)]
    api = by_kind(objects, "Deployment")["airflow-api-server"]
    assert api["spec"]["replicas"] == official_values(env)["apiServer"]["replicas"]
    (init,) = [c for c in api["spec"]["template"]["spec"]["initContainers"] if c["name"] == "sync-users"]
    assert init["args"] == [script] and init["image"] == "registry.example/airflow:0123abcd"
    config_map = by_kind(objects, "ConfigMap")["airflow-config"]["data"]["airflow.cfg"]
    assert f"auth_manager = {auth_policy.FAB_AUTH_MANAGER}" in config_map
    made = by_kind(render(platform_chart, platform_values(env, random_payload())), "Secret")
    for item in init["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["key"] in made[ref["name"]]["data"], item["name"]


def test_the_secret_check_finds_the_nil_broker_secret(official_chart_release):
    """Without the deploy's data.brokerUrlSecretName, 1.19.0 renders a Secret whose value is nil."""
    values = merge_values(official_values("integration"), chart_values.airflow_values(
        target.Target("airflow", "airflow-platform", "airflow"), "r/airflow:t", {}, "d"))
    del values["data"]["brokerUrlSecretName"]
    rendered = official_chart_release.render(values=values, name="airflow", namespace="airflow", is_install=True)
    objects = [d for p, t in rendered.items() if not p.endswith("NOTES.txt") for d in load_all(t)]
    assert decoded(by_kind(objects, "Secret")["airflow-broker-url"]) == {"connection": "%!s(<nil>)"}


def name_problems(objects: list[dict]) -> list[str]:
    """Names and label values over Kubernetes' limits (pure)."""
    problems = []
    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        limit = NAME_MAX.get(kind, SUBDOMAIN_MAX)
        if len(meta["name"]) > limit:
            problems.append(f"{kind}/{meta['name']}: name of {len(meta['name'])} > {limit}")
        templates = [obj.get("spec", {}).get("template", {}).get("metadata", {}),
                     obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("metadata", {})]
        for where in (meta, *templates):
            for key, value in (where.get("labels") or {}).items():
                if len(str(value)) > DNS_LABEL_MAX:
                    problems.append(f"{kind}/{meta['name']}: label {key} of {len(str(value))} > {DNS_LABEL_MAX}")
    return problems


def longest_names(objects: list[dict]) -> str:
    """The longest name of each limit, for the failure message."""
    longest = {}
    for obj in objects:
        limit = NAME_MAX.get(obj["kind"], SUBDOMAIN_MAX)
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if len(name) > len(longest.get(limit, "")):
            longest[limit] = name
    return ", ".join(f"{name} ({len(name.split('/', 1)[1])} <= {limit}?)" for limit, name in sorted(longest.items()))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_longest_preview_name_fits_every_derived_name(official_chart_release, platform_chart, executor):
    """A preview's release is at most 40 characters (config.preview_name): every name the official
    and the platform chart derive from it, with every option on, fits Kubernetes' limits."""
    release = config.preview_name("feature/" + "x" * 100)  # cut to 33 characters, then -<6-char hash>
    assert len(release) == config.PREVIEW_NAME_MAX
    tgt = target.target(load_deploy("integration").helm, release)
    objects = render_official(official_chart_release, "production", every_option(executor), release=release)
    objects += platform_chart_objects(platform_chart, tgt)
    if executor == "KubernetesExecutor":
        objects.append(pod_template(objects, release))
    assert name_problems(objects) == [], longest_names(objects)
    assert len(tgt.namespace) <= DNS_LABEL_MAX and len(tgt.platform_release) <= 53
    # What stays within 63 by the 40-character cap: the longest label-limited name is the migration Job.
    jobs = [o["metadata"]["name"] for o in objects if o["kind"] in ("Job", "Service")]
    assert max(map(len, jobs)) == len(f"{release}-run-airflow-migrations") == 63


def test_the_name_check_finds_a_53_character_release(official_chart_release):
    """The check bites: at Helm's own limit of 53 characters, the migration Job's name is over 63."""
    release = "airflow-" + "x" * 45
    problems = name_problems(render_official(official_chart_release, "integration", AirflowOptions(), release))
    assert f"Job/{release}-run-airflow-migrations: name of 76 > 63" in problems


def platform_chart_objects(chart: helm_python.Chart, tgt: target.Target) -> list[dict]:
    payload = random_payload(tgt.airflow_release)
    rendered = chart.render(values=platform_values("integration", payload), name=tgt.platform_release,
                            namespace=tgt.namespace, is_install=True)
    return [d for p, t in rendered.items() if not p.endswith("NOTES.txt") for d in load_all(t)]


def load_deploy(env: str):
    return config.load(ROOT, env).spec
