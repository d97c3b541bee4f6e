"""``settings/<env>/deploy.yaml``: how an environment is deployed (plaintext; secrets live in secret.yaml).

The one reader of the file: images (``images.registry``), the local env's options (``airflow:``)
and deploys all ask :func:`load`.

::

    images:
      registry: 111122223333.dkr.ecr.eu-west-1.amazonaws.com/airflow   # where its images are pushed
    cloudformation:                      # optional: infrastructure first
      region: eu-west-1
      stack_prefix: airflow-production   # stacks are <prefix>-<name>
      parameters: infra/cloudformation/parameters/production.yaml
      stacks: [network, registries, logs, database, broker, cluster]   # in order; outputs feed later stacks
    helm:                                # optional: then the charts
      kube_context: production-cluster
      namespace: airflow
      timeout: 15m
      platform:                          # our chart: settings Secrets, project ConfigMaps/Secrets, volumes
        release: airflow-platform
        chart: charts/platform
        values: [charts/platform/values.yaml, charts/platform/values-production.yaml]
      airflow:                           # the official apache-airflow chart, by version
        release: airflow
        chart: apache-airflow/airflow
        repository: https://airflow.apache.org
        version: 1.19.0
        values: [charts/airflow/values.yaml, charts/airflow/values-production.yaml]
    airflow:                             # optional: how Airflow runs there (defaults below)
      executor: KubernetesExecutor       # or CeleryExecutor (Redis broker: settings' airflow.celery_broker_url)
      remote_logging:                    # task logs in S3; absent: on the logs volume
        base: s3://production-airflow-logs-111122223333-eu-west-1/logs   # the logs stack's bucket
        conn_id: aws_logs                # optional, a connection of secret.yaml; absent: the pods' AWS identity
      storage:                           # dags/common/storage.py's root; absent: the data volume
        base: s3://production-airflow-data-111122223333-eu-west-1/data   # the logs stack's data bucket
      metrics:
        statsd: true                     # StatsD -> the chart's statsd-exporter, scraped by Prometheus
        prometheus_rules: true           # the platform chart's PrometheusRule (charts/platform/files/alerts.yaml)
      dag_bundle:                        # where DAGs come from (airstack/git_bundle.py); deploys: git
        kind: git                        # GitDagBundle; `local`: the working tree (the local env's default)
        repository: https://github.com/example/airflow-platform.git   # cloned by Airflow, pushed to by deploys
        conn_id: git_dags                # optional, a connection of secret.yaml with the credentials
        refresh_interval: 30             # seconds between the DAG processor's fetches
      ingress:                           # the api-server behind a TLS-ending Ingress (airstack/settings/ingress.py)
        url: https://airflow.example.com # its public URL: [api] base_url, the OIDC callback's host
        tls: {managed: true}             # or {secret: NAME}: a kubernetes.io/tls Secret
        trusted_proxies: [10.30.0.0/20]  # whose X-Forwarded-* the api-server believes; absent: nobody's
      database_cleanup:                  # `airflow db clean` by the chart's CronJob (airstack/deploy/db_cleanup.py)
        retention_days: 90               # rows older than this go (DAG runs, task instances, XComs, logs...)
        schedule: "0 3 * * 0"            # cron, UTC; absent: Sundays at 03:00
    release:                             # optional: release records (airstack/deploy/release.py)
      records: s3://integration-airflow-data-111122223333-eu-west-1/releases   # each deploy writes <env>.json here
      promote_from: integration          # ship exactly what integration's record names (its images, by digest)
    preview: false                       # integration: deploy-integration -- --preview makes one per branch
    protected: true                      # production's guards (clean tree, main or a tag, pushed images...)
    parity_waivers:                      # optional: why this environment's settings differ (settings/env_parity.py)
      airflow.auth.oidc: integration logs in with passwords only; no IdP client is registered for it

Every problem is one line naming the file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from airstack.config_files import load_model, read_yaml
from airstack.errors import ConfigError
from airstack.settings.env_parity import Waivers
from airstack.settings.ingress import Ingress

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
Label = Annotated[str, StringConstraints(pattern=DNS_LABEL)]
# Helm release names: DNS-1123 labels of at most 53 characters.
Release = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$")]
Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", min_length=2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Images(_Model):
    registry: str = Field(min_length=1)


class CloudFormation(_Model):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
    stack_prefix: Label
    parameters: str
    stacks: list[Label] = Field(min_length=1)


class Release_(_Model):
    release: Release
    chart: str = Field(min_length=1)
    values: list[str] = Field(default_factory=list)
    version: str | None = None
    repository: str | None = None


class Helm(_Model):
    kube_context: str = Field(min_length=1)
    namespace: Label
    timeout: Duration = "15m"
    platform: Release_
    airflow: Release_

    @model_validator(mode="after")
    def _official_chart_pinned(self) -> Helm:
        if not self.airflow.chart.startswith(("./", "charts/", "/")) and not self.airflow.version:
            raise ValueError("airflow.version: pin the official chart's version (a chart from a repository)")
        return self


S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")


class Store(_Model):
    """Where something lives in object storage (``s3://bucket/prefix``), and the connection to reach it."""

    base: str
    conn_id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,249}$")] | None = None

    @field_validator("base")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        if not S3_URL.match(value):
            raise ValueError(f"{value!r} is not s3://BUCKET[/PREFIX] (a bucket name is 3-63 lowercase letters, "
                             "digits, '.' and '-')")
        return value

    @property
    def bucket(self) -> str:
        return bucket_of(self.base)


def bucket_of(url: str) -> str:
    """``s3://bucket/prefix`` -> ``bucket``."""
    return url.removeprefix("s3://").split("/", 1)[0]


class Metrics(_Model):
    statsd: bool = False
    prometheus_rules: bool = False


class DagBundle(_Model):
    """Airflow 3's DAG bundle: ``local`` (a folder, edited live) or ``git`` (GitDagBundle, versioned by commit)."""

    kind: Literal["local", "git"] = "local"
    # git: the remote Airflow clones and deploys push to (a URL; in settings/local a path, relative to the repo).
    repository: str | None = None
    conn_id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,249}$")] | None = None
    refresh_interval: int = Field(default=30, ge=1, le=3600)

    @model_validator(mode="after")
    def _repository_for_git(self) -> DagBundle:
        if self.kind == "git" and not self.repository:
            raise ValueError("repository: a git bundle needs the remote Airflow clones (and deploys push to)")
        return self


class DatabaseCleanup(_Model):
    """``airflow db clean`` on a schedule: what is older than ``retention_days`` is deleted."""

    retention_days: int = Field(ge=1, le=3650)
    schedule: Annotated[str, StringConstraints(pattern=r"^(@(yearly|annually|monthly|weekly|daily|hourly)|"
                                                       r"[0-9*/,-]+( [0-9A-Za-z*/,-]+){4})$")] = "0 3 * * 0"


class AirflowOptions(_Model):
    executor: Literal["LocalExecutor", "KubernetesExecutor", "CeleryExecutor"] = "KubernetesExecutor"
    remote_logging: Store | None = None
    storage: Store | None = None
    metrics: Metrics = Field(default_factory=Metrics)
    dag_bundle: DagBundle = Field(default_factory=DagBundle)
    ingress: Ingress | None = None
    database_cleanup: DatabaseCleanup | None = None


class ReleaseSpec(_Model):
    records: str
    promote_from: Label | None = None

    @field_validator("records")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        if not S3_URL.match(value):
            raise ValueError(f"{value!r} is not s3://BUCKET[/PREFIX]")
        return value


class DeployFile(_Model):
    images: Images
    cloudformation: CloudFormation | None = None
    helm: Helm | None = None
    airflow: AirflowOptions = Field(default_factory=AirflowOptions)
    release: ReleaseSpec | None = None
    preview: bool = False
    protected: bool = False
    parity_waivers: Waivers = Field(default_factory=dict)


class Environment(_Model):
    """An environment's deploy.yaml, validated, with where it came from."""

    name: str
    file: str
    spec: DeployFile


def deploy_file(root: Path, env: str) -> Path:
    return root / "settings" / env / "deploy.yaml"


def load(root: Path, env: str) -> Environment:
    path = deploy_file(root, env)
    rel = path.relative_to(root).as_posix()
    if not path.is_file():
        known = sorted(p.parent.name for p in (root / "settings").glob("*/deploy.yaml"))
        raise ConfigError(f"{rel}: no such file (environments with a deploy.yaml: {', '.join(known) or 'none'})")
    spec = load_model(path, DeployFile, shown=rel)
    _files_exist(root, rel, spec)
    _promotion_source(root, rel, env, spec)
    return Environment(name=env, file=rel, spec=spec)


def _promotion_source(root: Path, rel: str, env: str, spec: DeployFile) -> None:
    source = spec.release.promote_from if spec.release else None
    if source is None:
        return
    if source == env or not deploy_file(root, source).is_file():
        raise ConfigError(f"{rel}: release.promote_from: {source!r} is not another environment with a deploy.yaml")
    other = read_yaml(deploy_file(root, source), f"settings/{source}/deploy.yaml")
    if (other.get("release") or {}).get("records") != spec.release.records:
        raise ConfigError(f"{rel}: release.records: {source} writes its records elsewhere "
                          f"(settings/{source}/deploy.yaml release.records): they must be the same")


def _files_exist(root: Path, rel: str, spec: DeployFile) -> None:
    """Every file deploy.yaml names exists (a typo found now, not halfway through a deploy)."""
    wanted: list[tuple[str, str]] = []
    if spec.cloudformation:
        wanted.append(("cloudformation.parameters", spec.cloudformation.parameters))
        wanted += [(f"cloudformation.stacks[{i}]", f"infra/cloudformation/{name}.yaml")
                   for i, name in enumerate(spec.cloudformation.stacks)]
    if spec.helm:
        for part in ("platform", "airflow"):
            release = getattr(spec.helm, part)
            wanted += [(f"helm.{part}.values[{i}]", v) for i, v in enumerate(release.values)]
            if release.chart.startswith(("charts/", "./")):
                wanted.append((f"helm.{part}.chart", release.chart))
    for field, name in wanted:
        if not (root / name).exists():
            raise ConfigError(f"{rel}: {field}: {name} does not exist")


def protected(root: Path, env: str) -> bool:
    """Whether ``env`` is protected (deploy.yaml ``protected``); an environment without a deploy.yaml is not."""
    return deploy_file(root, env).is_file() and load(root, env).spec.protected
