"""What the chart tests share (tests/deploy/charts/, the gate's charts lane, and the other chart tests).

- charts/platform (our chart) is rendered by the real Helm 4 engine of the helm-python-sdk wheel, with each
  environment's values file plus a stdin-style payload of random secrets (:func:`random_payload`), and every
  manifest is validated against Kubernetes' own OpenAPI schemas (:func:`assert_valid_kubernetes`).
- charts/airflow holds values for the official apache-airflow chart, rendered at the pinned release
  (:func:`official_chart_release`, :func:`render_official`) and checked as data.
"""

from __future__ import annotations

import ast
import base64
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

from airstack.deploy import chart_values, target
from airstack.deploy.chart_values import merge_values
from airstack import git_bundle
from airstack import verdict
from airstack.deploy import config
from airstack.settings.deploy_file import AirflowOptions, DagBundle
from tests.deploy import official_chart

ROOT = Path(__file__).resolve().parents[3]
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


# --- charts/airflow: values for the official chart -----------------------------------------

# Every key path the files and the deploy's payload set must be one the pinned release declares in
# its values.schema.json (charts/airflow/schemas/airflow-chart-<version>.values.schema.json, the
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


def _every_option() -> list[AirflowOptions]:
    """Each switch of deploy.yaml's airflow section on, and everything off."""
    store = {"base": "s3://bucket-x/prefix", "conn_id": "aws_x"}
    return [AirflowOptions(), AirflowOptions(executor="LocalExecutor"),
            AirflowOptions(executor="CeleryExecutor", remote_logging=store, storage=store,
                           metrics={"statsd": True, "prometheus_rules": True})]


_CREDENTIAL_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_FERNET_KEY = re.compile(r"^[A-Za-z0-9_-]{43}=$")


def _quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if str(value).endswith(suffix):
            return float(str(value)[:-len(suffix)]) * factor
    return float(value)


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


def pod_template(objects: list[dict], release: str = "airflow") -> dict:
    """The KubernetesExecutor's task pod: pod_template_file.yaml of the chart's `<release>-config` ConfigMap."""
    return yaml.safe_load(by_kind(objects, "ConfigMap")[f"{release}-config"]["data"]["pod_template_file.yaml"])


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


def platform_chart_objects(chart: helm_python.Chart, tgt: target.Target) -> list[dict]:
    payload = random_payload(tgt.airflow_release)
    rendered = chart.render(values=platform_values("integration", payload), name=tgt.platform_release,
                            namespace=tgt.namespace, is_install=True)
    return [d for p, t in rendered.items() if not p.endswith("NOTES.txt") for d in load_all(t)]


def load_deploy(env: str):
    return config.load(ROOT, env).spec
