"""`nox -s up -- --s3 --celery --metrics`, end to end: one env on free ports runs the ETL through a
real Celery worker and a real Redis, writes its task logs and its landed file to the S3 stand-in
(a moto server), serves those logs through the Airflow API, and exposes its metrics for Prometheus."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from airstack import paths
from airstack.localenv.config import LocalConfig
from airstack.postgres.embedded import free_port
from tests.e2e.test_local_native import _env_pids, _listening_addresses, cli

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="--celery needs redis-server (Debian: apt-get install redis-server)")]
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 in /proc/net/tcp*


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from airstack.settings import store

    root = paths.scratch_copy(tmp_path_factory.mktemp("local-options"), ("dags", "plugins", "settings"),
                              ("pyproject.toml", ".sops.yaml"))
    ports = {name: free_port() for name in ("api", "pg", "s3", "redis", "flower", "statsd", "metrics")}
    environ = {"AIRSTACK_ROOT": str(root), "AIRSTACK_LOCAL_API_PORT": str(ports["api"]),
               "AIRSTACK_LOCAL_POSTGRES_PORT": str(ports["pg"]), "AIRSTACK_LOCAL_REDIS_PORT": str(ports["redis"]),
               "AIRSTACK_LOCAL_FLOWER_PORT": str(ports["flower"]), "AIRSTACK_LOCAL_STATSD_PORT": str(ports["statsd"]),
               "AIRSTACK_LOCAL_METRICS_PORT": str(ports["metrics"])}
    doc = store.decrypt_raw(root, "local")
    for conn in doc["airflow"]["connections"]:
        if conn["id"] == "warehouse_db":
            conn["port"] = ports["pg"]
        if conn["id"] == "aws_local":
            conn["extra"]["endpoint_url"] = f"http://127.0.0.1:{ports['s3']}"
    store.save(root, "local", doc)
    yield {"root": root, "environ": environ, "ports": ports, "api": f"http://127.0.0.1:{ports['api']}/api/v2"}
    cli(environ, "clean", "--yes", check=False)


def _s3(env):
    import boto3

    from airstack.localenv import options
    from airstack.settings import store

    standin = options.s3_standin(options.local_options(env["root"]), store.load(env["root"], "local"))
    client = boto3.client("s3", endpoint_url=standin.endpoint, region_name=standin.region,
                          aws_access_key_id=standin.access_key, aws_secret_access_key=standin.secret_key)
    return client, standin


def _metrics(env) -> str:
    return httpx.get(f"http://127.0.0.1:{env['ports']['metrics']}/metrics", timeout=10).text


def _sample(text: str, name: str) -> float | None:
    """The sum of a metric's samples in Prometheus text format (None: no sample)."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith((name + " ", name + "{"))]
    return sum(values) if values else None


def test_options_end_to_end(env):
    environ = env["environ"]
    out = cli(environ, "up", "--s3", "--celery", "--metrics").stdout  # no --runtime: the options pick native
    assert "runtime: native" in out and "Airflow is up" in out, out
    assert f"s3 stand-in: http://127.0.0.1:{env['ports']['s3']}" in out

    run = cli(environ, "run", "etl_postgres_orders", check=False)
    assert run.returncode == 0 and ": success" in run.stdout, run.stdout + run.stderr
    runs = httpx.get(f"{env['api']}/dags/etl_postgres_orders/dagRuns", timeout=10).json()["dag_runs"]
    run_id = next(r["dag_run_id"] for r in runs if r["run_type"] == "manual")
    tasks = ["create_tables", "extract", "load", "transform", "check"]

    # Celery: the worker ran every task of the run (its log says so), flower answers on loopback.
    config = LocalConfig.from_env(env["root"], environ)
    worker_log = config.log_file("celery-worker").read_text()
    assert worker_log.count("] succeeded in ") >= len(tasks), worker_log[-2000:]
    assert httpx.get(f"http://127.0.0.1:{env['ports']['flower']}/healthcheck", timeout=10).text == "OK"

    # Remote logs: one object per task in the bucket (a task's log is uploaded as its process ends,
    # which may be just after the run's state is set), then the API serves them from S3 once the
    # local copies are gone.
    client, standin = _s3(env)
    bucket, prefix = standin.logs.removeprefix("s3://").split("/", 1)
    deadline, uploaded = time.monotonic() + 60, []
    while time.monotonic() < deadline and set(uploaded) != set(tasks):  # a retried task has two attempts
        time.sleep(0.5)
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/dag_id=etl_postgres_orders/run_id={run_id}/")
        uploaded = [o["Key"].split("/task_id=")[1].split("/")[0] for o in listed.get("Contents", [])]
    assert set(uploaded) == set(tasks), uploaded
    shutil.rmtree(config.airflow_home / "logs" / "dag_id=etl_postgres_orders", ignore_errors=True)
    log = httpx.get(f"{env['api']}/dags/etl_postgres_orders/dagRuns/{run_id}/taskInstances/extract/logs/1",
                    headers={"Accept": "application/json"}, timeout=30).json()
    events = [str(line.get("event", "")) for line in log["content"]]
    assert any(e.startswith(f"{standin.logs}/dag_id=etl_postgres_orders/") for e in events), events[:5]
    assert any("Filling up the DagBag" in e for e in events)  # the task's own lines, read back from S3

    # Storage: the ETL's landed file is in the S3 stand-in, not in the local data folder.
    data_bucket, data_prefix = standin.storage.removeprefix("s3://").split("/", 1)
    landed = client.list_objects_v2(Bucket=data_bucket, Prefix=f"{data_prefix}/etl/orders/").get("Contents", [])
    assert len(landed) == 1 and landed[0]["Key"].endswith(".csv")
    assert not list((config.data_dir / "storage").glob("**/*.csv"))

    # Metrics: real Airflow metrics through StatsD, for Prometheus.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (_sample(_metrics(env), "airflow_scheduler_heartbeat") or 0) > 0:
        time.sleep(1)
    text = _metrics(env)
    assert (_sample(text, "airflow_scheduler_heartbeat") or 0) > 0, text[:2000]
    assert _sample(text, "airflow_executor_queued_tasks") is not None, text[:2000]
    assert (_sample(text, "airflow_ti_successes") or 0) >= len(tasks), text[:2000]

    # Every server of the env and of the options listens on loopback only.
    addresses = _listening_addresses(_env_pids({"root": env["root"], "environ": environ}))
    assert addresses and addresses <= LOOPBACK, addresses

    cli(environ, "down")
    assert not [p for p in config.run.glob("*.pid")], "down leaves no service running"
    status = cli(environ, "status", check=False).stdout
    assert "celery-worker" not in status and "s3 " not in status


def test_options_refuse_the_docker_runtime(env):
    cli(env["environ"], "down", check=False)
    refused = cli(env["environ"], "up", "--runtime", "docker", "--celery", check=False, timeout=60)
    assert refused.returncode == 1
    assert "--celery run in the native runtime" in refused.stderr and "Traceback" not in refused.stderr
    assert not Path(env["root"], ".airstack", "local", "native", "run", "redis.pid").exists()
