"""deploy.yaml's ``airflow`` section: what each option puts in the charts' values, what it needs from
the settings, and the one-line errors when something does not fit.

The payloads are checked as data (pure), the platform chart by the real Helm 4 engine, and a Celery
deploy end to end through the recording `helm` stand-in (airstack/standins/helm.py).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import helm_python
import pytest
import yaml

from airstack.cli import run_main
from airstack.deploy import config
from airstack.deploy import chart_values, helm_binary, masking, target
from airstack.deploy import deployer
from airstack.deploy.main import main
from airstack.settings.deploy_file import AirflowOptions
from airstack.settings.schema import parse_settings
from tests.deploy.conftest import helm_only_with_made_up_images
from tests.helpers import leaves

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/", "settings/")

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "charts" / "platform"
TARGET = target.Target(namespace="airflow", platform_release="airflow-platform", airflow_release="airflow")
BROKER_URL = "rediss://:broker-token-7f3a9c@broker.internal:6379/0?ssl_cert_reqs=required"
DEPLOY_FILE = "settings/integration/deploy.yaml"
SECRET_FILE = "settings/integration/secret.yaml"


def settings(broker_url: str | None = BROKER_URL):
    document = {"airflow": {"keys": {}, "metadata_connection": "postgresql://a:b@db:5432/airflow",
                            "connections": [{"id": "aws_logs", "type": "aws"}]}}
    if broker_url is not None:
        document["airflow"]["celery_broker_url"] = broker_url
    return parse_settings(document, SECRET_FILE)


def official(**options) -> dict:
    return chart_values.airflow_values(TARGET, "reg/airflow:abc", {}, "digest", AirflowOptions(**options))


def env_of(values: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in values["env"]}


# ------------------------------------------------------------------------- payloads (pure) --
def test_defaults_run_the_kubernetes_executor_with_logs_on_the_volume():
    values = official()
    assert values["executor"] == "KubernetesExecutor"
    assert "logging" not in values["config"]  # [logging] stays the chart's (no remote logging)
    assert values["statsd"] == {"enabled": False}
    assert set(env_of(values)) == {"AIRSTACK_IMAGES", "AIRSTACK_K8S_NAMESPACE"}
    # The broker Secret is named even here: otherwise the official chart renders its own, from an
    # empty data.brokerUrl (tests/deploy/charts/ renders it).
    assert values["data"] == {"metadataSecretName": "airflow-metadata", "brokerUrlSecretName": "airflow-broker"}
    assert not {"redis", "flower"} & set(values)
    assert set(values["workers"]) == {"extraInitContainers"}  # the task pods' wait (schema_wait), nothing Celery's
    platform = chart_values.platform_values(settings(), TARGET, "reg/airflow:abc")
    assert platform["settings"]["celeryBrokerUrl"] == ""  # no broker Secret, even with a URL in settings
    assert platform["metrics"] == {"prometheusRules": {"enabled": False}}


@pytest.mark.parametrize(("conn_id", "expected"), [(None, ""), ("aws_logs", "aws_logs")])
def test_remote_logging_configures_the_s3_task_handler(conn_id, expected):
    """[logging] as the amazon provider reads it; an empty conn id: the pods' own AWS identity."""
    values = official(remote_logging={"base": "s3://logs-bucket/logs", "conn_id": conn_id})
    assert values["config"]["logging"] == {"remote_logging": "True", "remote_base_log_folder": "s3://logs-bucket/logs",
                                           "remote_log_conn_id": expected}


def test_storage_is_in_every_airflow_pods_environment():
    without_conn = env_of(official(storage={"base": "s3://data-bucket/data"}))
    assert without_conn["AIRSTACK_STORAGE_BASE"] == "s3://data-bucket/data"
    assert "AIRSTACK_STORAGE_CONN_ID" not in without_conn
    with_conn = env_of(official(storage={"base": "s3://data-bucket/data", "conn_id": "aws_data"}))
    assert with_conn["AIRSTACK_STORAGE_CONN_ID"] == "aws_data"
    assert with_conn["AIRSTACK_K8S_NAMESPACE"] == "airflow"  # appended to, not replacing, the others


def test_metrics_switches():
    assert official(metrics={"statsd": True})["statsd"] == {"enabled": True}
    platform = chart_values.platform_values(settings(), TARGET, "r/a:t",
                                            AirflowOptions(metrics={"prometheus_rules": True}))
    assert platform["metrics"] == {"prometheusRules": {"enabled": True}}


def test_celery_uses_the_environments_broker_and_flower():
    values = official(executor="CeleryExecutor")
    assert values["executor"] == "CeleryExecutor"
    assert values["redis"] == {"enabled": False}  # ElastiCache, not the chart's Redis
    assert values["data"]["brokerUrlSecretName"] == chart_values.broker_secret_name("airflow") == "airflow-broker"
    assert values["flower"] == {"enabled": True, "command": ["/usr/bin/env"]}  # the runtime image, as the workers
    workers = values["workers"]
    # The runtime image has ENTRYPOINT ["airflow"] and no /entrypoint (charts/airflow/values.yaml).
    assert workers["celery"]["command"] == ["/usr/bin/env"]
    assert "/entrypoint" not in " ".join(workers["livenessProbe"]["command"])
    assert "inspect ping" in workers["livenessProbe"]["command"][-1]
    assert workers["waitForMigrations"] == {"enabled": False}
    assert workers["persistence"] == {"enabled": False} and workers["logGroomerSidecar"] == {"enabled": False}
    platform = chart_values.platform_values(settings(), TARGET, "r/a:t", AirflowOptions(executor="CeleryExecutor"))
    assert platform["settings"]["celeryBrokerUrl"] == BROKER_URL
    assert BROKER_URL not in helm_binary.to_stdin(values), "the official chart gets the Secret's name, not the URL"


def test_the_settings_digest_follows_the_broker_url():
    options = AirflowOptions(executor="CeleryExecutor")
    before = chart_values.settings_digest(chart_values.platform_values(settings(), TARGET, "r/a:t", options))
    other = settings(BROKER_URL.replace("broker-token", "broker-token-2"))
    after = chart_values.settings_digest(chart_values.platform_values(other, TARGET, "r/a:t", options))
    assert before != after


# ------------------------------------------------------------- the platform chart renders it --
@pytest.fixture(scope="module")
def platform_chart():
    with helm_python.Chart.load(PLATFORM) as chart:
        yield chart


def rendered_secrets(chart, values: dict) -> dict[str, dict]:
    files = yaml.safe_load((PLATFORM / "values-integration.yaml").read_text())
    rendered = chart.render(values={**files, **values}, name="airflow-platform", namespace="airflow",
                            is_install=True)
    docs = [d for path, text in rendered.items() if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}


@pytest.mark.parametrize("executor", ["CeleryExecutor", "KubernetesExecutor"])
def test_the_broker_secret_is_what_the_official_chart_reads(platform_chart, executor):
    """The deploy's two payloads agree: data.brokerUrlSecretName names the platform's Secret, key
    `connection` (the official chart's AIRFLOW__CELERY__BROKER_URL secretKeyRef), the URL base64."""
    options = AirflowOptions(executor=executor)
    platform = chart_values.platform_values(settings(), TARGET, "reg/airflow:abc", options)
    secrets_ = rendered_secrets(platform_chart, platform)
    if executor != "CeleryExecutor":
        assert "airflow-broker" not in secrets_
        return
    name = chart_values.airflow_values(TARGET, "reg/airflow:abc", {}, "d", options)["data"]["brokerUrlSecretName"]
    assert secrets_[name]["data"] == {"connection": base64.b64encode(BROKER_URL.encode()).decode()}


# --------------------------------------------------------------------- one line per problem --
def _environment(**airflow) -> config.Environment:
    spec = config.load(ROOT, "integration").spec.model_copy(update={"airflow": AirflowOptions(**airflow)})
    return config.Environment(name="integration", file=DEPLOY_FILE, spec=spec)


def _secret(broker: bool = False) -> dict:
    airflow = {"connections": [{"id": "warehouse_db", "type": "postgres", "host": "ENC[...]"}]}
    if broker:
        airflow["celery_broker_url"] = "ENC[AES256_GCM,data:...,type:str]"
    return {"airflow": airflow}


def test_settings_problems_read_the_plaintext_ids():
    ok = _environment(executor="CeleryExecutor", storage={"base": "s3://b-x/d", "conn_id": "warehouse_db"})
    assert config.settings_problems(ok, SECRET_FILE, _secret(broker=True)) == []
    bad = _environment(executor="CeleryExecutor", remote_logging={"base": "s3://b-x/l", "conn_id": "aws_logs"},
                       storage={"base": "s3://b-x/d", "conn_id": "aws_data"})
    assert config.settings_problems(bad, SECRET_FILE, _secret()) == [
        f"{DEPLOY_FILE}: airflow.remote_logging.conn_id: no connection 'aws_logs' in {SECRET_FILE}",
        f"{DEPLOY_FILE}: airflow.storage.conn_id: no connection 'aws_data' in {SECRET_FILE}",
        f"{DEPLOY_FILE}: airflow.executor: CeleryExecutor needs airflow.celery_broker_url in {SECRET_FILE} "
        "(the broker's URL: the broker stack's BrokerUrl output)"]


def test_stack_problems_compare_buckets_with_the_logs_stack():
    env = _environment(remote_logging={"base": "s3://logs-a/logs"}, storage={"base": "s3://data-a/data"})
    assert config.stack_problems(env, {}) == []  # nothing deployed (or moto: no outputs)
    outputs = {"logs": {"RemoteBaseLogFolder": "s3://logs-a/logs", "StorageBase": "s3://data-a/other"}}
    assert config.stack_problems(env, outputs) == []  # same buckets, another prefix is fine
    outputs["logs"]["StorageBase"] = "s3://data-b/data"
    (line,) = config.stack_problems(env, outputs)
    assert line.startswith(f"{DEPLOY_FILE}: airflow.storage.base: bucket data-a is not the one the logs stack made")


def _edit_deploy_yaml(root: Path, airflow: dict) -> None:
    path = root / "settings" / "integration" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    data["airflow"] = {**data.get("airflow", {}), **airflow}
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(("airflow", "message"), [
    ({"remote_logging": {"base": "s3://logs-bucket/logs", "conn_id": "aws_logs"}},
     f"{DEPLOY_FILE}: airflow.remote_logging.conn_id: no connection 'aws_logs' in {SECRET_FILE}"),
    ({"storage": {"base": "s3://data-bucket/data", "conn_id": "nope"}},
     f"{DEPLOY_FILE}: airflow.storage.conn_id: no connection 'nope' in {SECRET_FILE}"),
    ({"executor": "CeleryExecutor"},
     f"{DEPLOY_FILE}: airflow.executor: CeleryExecutor needs airflow.celery_broker_url in {SECRET_FILE}"),
    ({"remote_logging": {"base": "http://x"}},
     f"{DEPLOY_FILE}: airflow.remote_logging.base: 'http://x' is not s3://BUCKET[/PREFIX]"),
    ({"storage": {"base": "s3://UPPER/data"}},
     f"{DEPLOY_FILE}: airflow.storage.base: 's3://UPPER/data' is not s3://BUCKET[/PREFIX]"),
    ({"executor": "SequentialExecutor"}, f"{DEPLOY_FILE}: airflow.executor: Input should be 'LocalExecutor'"),
])
def test_bad_airflow_options_are_one_line_before_anything_runs(scratch_repo, helm_standin, monkeypatch, capsys,
                                                               airflow, message):
    """Each fails before images are built, stacks planned or Helm asked anything."""
    root, _ = scratch_repo
    _edit_deploy_yaml(root, airflow)
    monkeypatch.setattr(deployer, "images", lambda *a: pytest.fail("images built despite a bad deploy.yaml"))
    assert run_main(main, ["deploy", "integration", "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}"), err
    assert helm_standin() == [], "helm was called"


# ------------------------------------------------- a Celery deploy through the helm stand-in --
def _hashed(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_a_celery_deploy_passes_the_broker_url_on_stdin_only(scratch_repo, helm_standin, monkeypatch, capsys):
    """The broker URL, encrypted in secret.yaml by the .sops.yaml rule, reaches the platform chart on stdin
    (never argv) and becomes Secret airflow-broker; the official chart is told that Secret's name."""
    from airstack.settings import store

    root, document = scratch_repo
    document["airflow"]["celery_broker_url"] = BROKER_URL
    store.save(root, "integration", document)
    stored = yaml.safe_load((root / "settings" / "integration" / "secret.yaml").read_text())
    assert stored["airflow"]["celery_broker_url"].startswith("ENC["), "the sops rule did not encrypt it"
    _edit_deploy_yaml(root, {"executor": "CeleryExecutor"})
    helm_only_with_made_up_images(root, monkeypatch)

    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, \
        capsys.readouterr().err
    calls = helm_standin()
    assert not [c for c in calls if BROKER_URL in " ".join(c["argv"]) or "broker-token" in " ".join(c["argv"])]
    upgrades = {c["argv"][2]: c for c in calls if c["argv"][:1] == ["upgrade"]}
    assert list(upgrades) == ["airflow-platform", "airflow"]
    assert _hashed(BROKER_URL) in set(leaves(upgrades["airflow-platform"]["stdin"]))
    assert _hashed(BROKER_URL) not in set(leaves(upgrades["airflow"]["stdin"]))
    official_stdin = upgrades["airflow"]["stdin"]
    assert official_stdin["executor"] == _hashed("CeleryExecutor")
    assert official_stdin["data"]["brokerUrlSecretName"] == _hashed("airflow-broker")

    import os

    installed = (Path(os.environ["HELM_STANDIN_STATE"]) / "releases" / "airflow-integration" / "airflow"
                 / "airflow-platform.yaml")
    (broker,) = [d for d in yaml.safe_load_all(installed.read_text())
                 if d and d["kind"] == "Secret" and d["metadata"]["name"] == "airflow-broker"]
    # The stand-in keeps Secret values as airstack's diff shows them: digests of the base64 value.
    assert broker["data"] == {"connection": masking.mask_secret_values(
        {"kind": "Secret", "data": {"connection": base64.b64encode(BROKER_URL.encode()).decode()}})["data"][
        "connection"]}
