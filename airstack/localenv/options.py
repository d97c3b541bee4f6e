"""The local env's options: S3 stand-in, CeleryExecutor, metrics (``nox -s up -- --s3 --celery --metrics``).

Each option is what an environment's ``settings/<env>/deploy.yaml`` ``airflow:`` section turns
on in a cluster, with a local stand-in for what only exists there:

- ``--s3``: a moto server (the ``moto[server,s3]`` of requirements/dev.txt) on the endpoint of
  the connection that settings/local's ``remote_logging``/``storage`` name (``aws_local``,
  http://127.0.0.1:4566) stands in for S3. Task logs go to ``remote_logging.base`` (Airflow's
  remote logging, read back by the api-server) and dags/common/storage.py's root is
  ``storage.base``. moto keeps its buckets in memory: `down` empties them.
- ``--celery``: CeleryExecutor with a Redis broker (``redis-server`` from the system: Debian's
  ``redis-server`` package), a Celery worker and flower, all on 127.0.0.1.
- ``--metrics``: Airflow's StatsD metrics into ``airstack.metrics.bridge`` (what the chart's
  statsd-exporter does), served for Prometheus on http://127.0.0.1:9102/metrics.

They run in the native runtime: the docker runtime's containers share one network namespace
with no image for these servers.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from airstack.settings.deploy_file import bucket_of
from airstack.errors import ConfigError

LOCAL_DEPLOY = "settings/local/deploy.yaml"
# Extra services, in start order: servers Airflow needs from its first task (before the Airflow
# services), then Airflow's own Celery processes (after them; stopped first). MARKERS: what each
# one's command line contains (pid files are checked against it, so a reused pid is never taken).
SERVERS = ("s3", "redis", "metrics")
CELERY_PROCESSES = ("celery-worker", "flower")
EXTRA_SERVICES = SERVERS + CELERY_PROCESSES
MARKERS = {"s3": "moto.server", "redis": "redis-server", "metrics": "airstack.metrics.bridge",
           "celery-worker": "celery", "flower": "flower"}
PORT_ENV = {"redis": ("AIRSTACK_LOCAL_REDIS_PORT", 6379), "flower": ("AIRSTACK_LOCAL_FLOWER_PORT", 5555),
            "statsd": ("AIRSTACK_LOCAL_STATSD_PORT", 8125), "metrics": ("AIRSTACK_LOCAL_METRICS_PORT", 9102)}


@dataclass(frozen=True)
class S3StandIn:
    """Where the stand-in listens and what the local env writes there (from settings/local)."""

    port: int
    conn_id: str
    logs: str  # s3://bucket/prefix
    storage: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def buckets(self) -> list[str]:
        return sorted({bucket_of(url) for url in (self.logs, self.storage)})


@dataclass(frozen=True)
class Options:
    s3: S3StandIn | None = None
    celery: bool = False
    metrics: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    # airflow.dag_bundle.kind: git (airstack/localenv/bundle.py): the bundle's environment, its version now.
    bundle_env: dict[str, str] = field(default_factory=dict)
    bundle_version: str | None = None

    @property
    def services(self) -> list[str]:
        wanted = {"s3": self.s3 is not None, "redis": self.celery, "metrics": self.metrics,
                  "celery-worker": self.celery, "flower": self.celery}
        return [s for s in EXTRA_SERVICES if wanted[s]]

    @property
    def any(self) -> bool:
        return bool(self.services)

    def endpoints(self) -> dict[str, str]:
        """Where each option's server listens (for `status`; no secret in it)."""
        found = {"s3": self.s3.endpoint if self.s3 else None,
                 "redis": f"127.0.0.1:{self.ports.get('redis')}", "flower": f"127.0.0.1:{self.ports.get('flower')}",
                 "celery-worker": "-",
                 "metrics": f"127.0.0.1:{self.ports.get('metrics')}/metrics, 127.0.0.1:{self.ports.get('statsd')}/udp"}
        return {service: found[service] for service in self.services}

    def describe(self) -> list[str]:
        lines = []
        if self.s3:
            lines.append(f"s3 stand-in: {self.s3.endpoint} (task logs {self.s3.logs}, storage {self.s3.storage})")
        if self.celery:
            lines.append(f"celery: redis 127.0.0.1:{self.ports['redis']}, "
                         f"flower http://127.0.0.1:{self.ports['flower']}")
        if self.metrics:
            lines.append(f"metrics: http://127.0.0.1:{self.ports['metrics']}/metrics "
                         f"(StatsD on 127.0.0.1:{self.ports['statsd']}/udp)")
        if self.bundle_version:
            lines.append(f"dags: git bundle at {self.bundle_version[:12]} (ship a commit: python -m airstack.deploy "
                         "deploy local --dags)")
        return lines


def ports(environ=None) -> dict[str, int]:
    environ = os.environ if environ is None else environ
    return {name: int(environ.get(var, default)) for name, (var, default) in PORT_ENV.items()}


def local_options(root: Path):
    """settings/local/deploy.yaml's ``airflow:`` section (executor, remote_logging, storage, metrics)."""
    from airstack.settings.deploy_file import load

    return load(root, "local").spec.airflow


def s3_standin(options, settings) -> S3StandIn:
    """The stand-in from settings/local: both stores on one connection whose endpoint is 127.0.0.1."""
    stores = {"remote_logging": options.remote_logging, "storage": options.storage}
    missing = [name for name, store in stores.items() if store is None or not store.conn_id]
    if missing:
        raise ConfigError(f"{LOCAL_DEPLOY}: airflow.{missing[0]}: --s3 needs a base and a conn_id "
                          "(a connection of settings/local/secret.yaml whose extra has endpoint_url)")
    if options.remote_logging.conn_id != options.storage.conn_id:
        raise ConfigError(f"{LOCAL_DEPLOY}: airflow.storage.conn_id: use the same connection as remote_logging "
                          "(one S3 stand-in)")
    conn_id = options.storage.conn_id
    conn = next((c for c in settings.airflow.connections if c.id == conn_id), None)
    if conn is None:
        raise ConfigError(f"{LOCAL_DEPLOY}: airflow.storage.conn_id: no connection {conn_id!r} in "
                          "settings/local/secret.yaml")
    extra = conn.extra or {}
    endpoint = urlsplit(str(extra.get("endpoint_url", "")))
    if endpoint.scheme != "http" or endpoint.hostname != "127.0.0.1" or not endpoint.port:
        raise ConfigError(f"settings/local/secret.yaml: airflow.connections[{conn_id}].extra.endpoint_url: "
                          "the S3 stand-in needs http://127.0.0.1:PORT")
    if not conn.login or not conn.password:
        raise ConfigError(f"settings/local/secret.yaml: airflow.connections[{conn_id}]: login and password "
                          "(the stand-in's access key) are required")
    return S3StandIn(port=endpoint.port, conn_id=conn_id, logs=options.remote_logging.base,
                     storage=options.storage.base, access_key=conn.login, secret_key=conn.password,
                     region=str(extra.get("region_name", "us-east-1")))


def resolve(root: Path, settings, *, s3: bool, celery: bool, metrics: bool, environ=None) -> Options:
    """Flags, else settings/local/deploy.yaml (executor: CeleryExecutor, metrics.statsd: true, dag_bundle)."""
    from airstack.localenv import bundle

    options = local_options(root)
    return Options(s3=s3_standin(options, settings) if s3 else None,
                   celery=celery or options.executor == "CeleryExecutor",
                   metrics=metrics or options.metrics.statsd, ports=ports(environ),
                   bundle_env=bundle.airflow_env(root, options.dag_bundle),
                   bundle_version=bundle.ensure_version(root, options.dag_bundle))


def airflow_env(extras: Options, data_dir: Path, metadata_dsn: str) -> dict[str, str]:
    """What the options add to every Airflow service's environment (no secret: connections stay in the DB)."""
    env: dict[str, str] = {"AIRSTACK_STORAGE_BASE": (data_dir / "storage").as_uri(), **extras.bundle_env}
    if extras.s3:
        env.update({
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": extras.s3.logs,
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": extras.s3.conn_id,
            "AIRSTACK_STORAGE_BASE": extras.s3.storage,
            "AIRSTACK_STORAGE_CONN_ID": extras.s3.conn_id,
        })
    if extras.celery:
        env.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{extras.ports['redis']}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_dsn,
            "AIRFLOW__CELERY__FLOWER_HOST": "127.0.0.1",
            "AIRFLOW__CELERY__FLOWER_PORT": str(extras.ports["flower"]),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
        })
    if extras.metrics:
        env.update({
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(extras.ports["statsd"]),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        })
    return env


def service_argv(extras: Options, service: str, airflow: str, redis_server: str | None = None) -> list[str]:
    """The command line of an extra service; every one listens on 127.0.0.1 only."""
    python = str(Path(sys.executable))
    if service == "s3":
        return [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(extras.s3.port)]
    if service == "redis":
        # No persistence: the broker's queue is as disposable as the rest of the local env.
        return [redis_server or "redis-server", "--bind", "127.0.0.1", "--port", str(extras.ports["redis"]),
                "--save", "", "--appendonly", "no", "--protected-mode", "yes"]
    if service == "metrics":
        return [python, "-m", "airstack.metrics.bridge", "--host", "127.0.0.1",
                "--statsd-port", str(extras.ports["statsd"]), "--http-port", str(extras.ports["metrics"])]
    if service == "celery-worker":
        # Task logs are read from the shared folder (or S3): no log server on 0.0.0.0:8793.
        return [airflow, "celery", "worker", "--skip-serve-logs", "--without-gossip", "--without-mingle"]
    if service == "flower":
        return [airflow, "celery", "flower", "--hostname", "127.0.0.1", "--port", str(extras.ports["flower"])]
    raise ValueError(service)


def listen_ports(extras: Options) -> list[tuple[int, str, str]]:
    """(port, service, where it is set) that must be free on 127.0.0.1 before the options start."""
    wanted = []
    if extras.s3:
        wanted.append((extras.s3.port, "s3", f"{extras.s3.conn_id}'s endpoint_url in settings/local/secret.yaml"))
    if extras.celery:
        wanted += [(extras.ports["redis"], "redis", PORT_ENV["redis"][0]),
                   (extras.ports["flower"], "flower", PORT_ENV["flower"][0])]
    if extras.metrics:
        wanted.append((extras.ports["metrics"], "metrics", PORT_ENV["metrics"][0]))
    return wanted


def ensure_buckets(standin: S3StandIn, timeout: float = 30.0) -> None:
    """Wait for the stand-in to answer, then create its buckets (idempotent)."""
    import boto3
    from botocore.config import Config
    from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

    client = boto3.session.Session().client(
        "s3", endpoint_url=standin.endpoint, region_name=standin.region, aws_access_key_id=standin.access_key,
        aws_secret_access_key=standin.secret_key, config=Config(retries={"max_attempts": 1}))

    @retry(retry=retry_if_exception_type(Exception), stop=stop_after_delay(timeout), wait=wait_fixed(0.2),
           reraise=True)
    def create(bucket: str) -> None:
        try:
            client.head_bucket(Bucket=bucket)
        except client.exceptions.ClientError:
            where = {} if standin.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": standin.region}}
            client.create_bucket(Bucket=bucket, **where)

    for bucket in standin.buckets:
        create(bucket)
