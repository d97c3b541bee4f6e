"""Helm releases of an environment: argv and the values given on stdin (pure; nothing runs here).

Two releases, in order, in one namespace: ``platform`` (our chart: the settings Secrets, each
project's ConfigMap/Secret, the volumes) and ``airflow`` (the official chart, by version).
Everything secret travels in the stdin payload (``--values -``); argv holds only names, paths
and versions, so nothing secret shows in ``ps`` or in a log of the command line.

deploy.yaml's ``airflow`` section (:class:`AirflowOptions`) becomes chart values here too:

- ``executor``: the official chart's ``executor``; CeleryExecutor adds the broker (ElastiCache,
  never the chart's Redis) through Secret ``<airflowRelease>-broker`` (the platform chart makes it
  from settings' ``celery_broker_url``), flower, and the worker overrides the runtime image needs;
- ``remote_logging``: ``config.logging`` (the amazon provider's S3 task handler);
- ``storage``: ``AIRSTACK_STORAGE_BASE``/``AIRSTACK_STORAGE_CONN_ID`` on every Airflow pod;
- ``metrics``: ``statsd.enabled`` (official chart), ``metrics.prometheusRules.enabled`` (platform).

Authentication: deploys run FAB's auth manager (charts/airflow/values.yaml); :func:`auth_problems`
refuses SimpleAuthManager. Settings' ``airflow.users`` become Secret ``<release>-users`` (platform
chart) and :func:`users_sync_container` keeps them in FAB's tables from each api-server pod; with settings'
``airflow.auth.oidc``, :func:`with_oidc` adds FAB's OIDC login (the client secret from Secret ``<release>-oidc``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass

import yaml

from airstack import paths
from airstack.airflow_env import SIMPLE_AUTH_MANAGER
from airstack.deploy import ingress
from airstack.deploy import db_cleanup, pod_security
from airstack.deploy.schema_wait import with_schema_wait
from airstack.settings.deploy_file import AirflowOptions, Helm, Release_
from airstack.settings import render
from airstack.settings.oidc import Oidc
from airstack.settings.schema import SettingsFile


@dataclass(frozen=True)
class Target:
    """Where an environment's releases go (a preview environment changes the names)."""

    namespace: str
    platform_release: str
    airflow_release: str
    preview: bool = False


def target(helm: Helm, preview: str | None = None) -> Target:
    if preview:
        return Target(namespace=preview, platform_release=f"{preview}-platform"[:53].rstrip("-"),
                      airflow_release=preview, preview=True)
    return Target(helm.namespace, helm.platform.release, helm.airflow.release)


PREVIEW_PREFIX = "previews"


def store_base(base: str, tgt: Target) -> str:
    """Where a store lives for this target: a preview's is ``previews/<namespace>/`` of the bucket, the only
    prefix cluster.yaml's PreviewRole lets its pods use (``s3://b/logs`` -> ``s3://b/previews/<ns>/logs``)."""
    if not tgt.preview:
        return base
    bucket, _, rest = base.removeprefix("s3://").partition("/")
    return f"s3://{bucket}/{PREVIEW_PREFIX}/{tgt.namespace}" + (f"/{rest}" if rest else "")


def helm_major(version_output: str) -> int:
    """3 or 4 from ``helm version --short`` (``v3.17.2+g...``)."""
    match = re.search(r"v(\d+)\.", version_output)
    if not match:
        raise ValueError(f"cannot read a Helm version from {version_output.strip()!r}")
    return int(match.group(1))


def _chart_args(release: Release_) -> list[str]:
    args = [release.chart]
    if release.repository:
        args += ["--repo", release.repository]
    if release.version:
        args += ["--version", release.version]
    return args


def upgrade_argv(helm: str, major: int, release: Release_, name: str, namespace: str, kube_context: str,
                 timeout: str) -> list[str]:
    """``helm upgrade --install`` that rolls back on failure and waits; values files, then stdin."""
    rollback = "--rollback-on-failure" if major >= 4 else "--atomic"  # Helm 4 renamed --atomic
    argv = [helm, "upgrade", "--install", name, *_chart_args(release), "--namespace", namespace,
            "--create-namespace", "--kube-context", kube_context, rollback, "--wait", "--timeout", timeout]
    for file in release.values:
        argv += ["--values", file]
    return [*argv, "--values", "-"]


def template_argv(helm: str, release: Release_, name: str, namespace: str, kube_context: str) -> list[str]:
    """``helm template`` of what ``upgrade_argv`` would install (the plan without the diff plugin)."""
    argv = [helm, "template", name, *_chart_args(release), "--namespace", namespace, "--kube-context", kube_context]
    for file in release.values:
        argv += ["--values", file]
    return [*argv, "--values", "-"]


def diff_argv(helm: str, release: Release_, name: str, namespace: str, kube_context: str) -> list[str]:
    """``helm diff upgrade`` (the helm-diff plugin), secrets suppressed in its output."""
    argv = [helm, "diff", "upgrade", name, *_chart_args(release), "--namespace", namespace,
            "--kube-context", kube_context, "--allow-unreleased", "--suppress-secrets", "--detailed-exitcode"]
    for file in release.values:
        argv += ["--values", file]
    return [*argv, "--values", "-"]


def uninstall_argv(helm: str, name: str, namespace: str, kube_context: str, timeout: str) -> list[str]:
    return [helm, "uninstall", name, "--namespace", namespace, "--kube-context", kube_context, "--wait",
            "--timeout", timeout, "--ignore-not-found"]


def list_argv(helm: str, kube_context: str) -> list[str]:
    """Every release of every namespace in any state (a failed or stuck preview too), as JSON: ``destroy
    --merged`` finds the previews there. ``--max`` well above any number of previews (Helm's default is 256)."""
    return [helm, "list", "--all-namespaces", "--all", "--kube-context", kube_context, "--output", "json",
            "--max", "10000"]


def get_manifest_argv(helm: str, name: str, namespace: str, kube_context: str) -> list[str]:
    return [helm, "get", "manifest", name, "--namespace", namespace, "--kube-context", kube_context]


def image_values(ref: str) -> dict[str, str]:
    """``registry/name:tag[@sha256:...]`` as the chart's ``images.airflow``: repository, tag and (given) digest."""
    named, _, digest = ref.partition("@")
    repository, tag = named.rsplit(":", 1)
    return {"repository": repository, "tag": tag, **({"digest": digest} if digest else {})}


def _pinned_tag(image: dict[str, str]) -> str:
    """``tag@sha256:...``: for the chart's fields that print ``repository:tag`` and have no digest of their own (chart
    1.19.0: ``images.pod_template``, ``images.flower``, ``[kubernetes_executor] worker_container_tag``), which makes
    ``repository:tag@sha256:...``, a reference Kubernetes pulls by its digest."""
    return f"{image['tag']}@{image['digest']}" if image.get("digest") else image["tag"]


def _runtime_images(runtime_image: str, celery: bool) -> tuple[dict, dict]:
    """(``images``, ``config``) values that run ``runtime_image`` everywhere the chart names an Airflow image: its
    components and Jobs (``images.airflow``, whose digest wins over the tag), the KubernetesExecutor's task pods (the
    pod template's image, and the executor's own ``worker_container_*``, which override it), and flower."""
    image = image_values(runtime_image)
    pinned = {"repository": image["repository"], "tag": _pinned_tag(image), "pullPolicy": "IfNotPresent"}
    images = {"airflow": {**image, "pullPolicy": "IfNotPresent"}, "pod_template": pinned}
    if celery:
        images["flower"] = pinned
    worker = {"worker_container_repository": pinned["repository"], "worker_container_tag": pinned["tag"]}
    # [kubernetes] is the name chart 1.19.0 still fills (deprecated); Airflow 3 reads [kubernetes_executor].
    return images, {"kubernetes": dict(worker), "kubernetes_executor": dict(worker)}


CELERY = "CeleryExecutor"
# The Celery worker's liveness check as the chart runs it, without the apache/airflow image's
# /entrypoint (images/airflow has none; charts/airflow/values.yaml explains the other overrides).
CELERY_PING = ("CONNECTION_CHECK_MAX_COUNT=0 exec python -m celery --app "
               "airflow.providers.celery.executors.celery_executor.app inspect ping -d celery@$(hostname)")


def broker_secret_name(airflow_release: str) -> str:
    """The platform chart's Secret with the Celery broker URL (key ``connection``)."""
    return f"{airflow_release}-broker"


def platform_values(settings: SettingsFile, tgt: Target, runtime_image: str,
                    options: AirflowOptions | None = None) -> dict:
    """The platform chart's stdin values: settings Secrets, projects, the metrics switch (``runtime_image``:
    unused since DAGs come from the bundle; kept for the callers' signature)."""
    options = options or AirflowOptions()
    celery = options.executor == CELERY
    return {
        "airflowRelease": tgt.airflow_release,
        "settings": {"keys": render.keys_data(settings.airflow), "env": render.env_data(settings.airflow),
                     "metadataConnection": settings.airflow.metadata_connection or "",
                     # Only a Celery deploy gets the broker Secret (config.settings_problems requires the URL).
                     "celeryBrokerUrl": (settings.airflow.celery_broker_url or "") if celery else "",
                     "users": render.users_data(settings.airflow),
                     "oidcClientSecret": oidc.client_secret if (oidc := settings.airflow.auth.oidc) else ""},
        "projects": {name: {"config": dict(p.config), "secret": dict(p.secret)}
                     for name, p in settings.projects.items()},
        "metrics": {"prometheusRules": {"enabled": options.metrics.prometheus_rules}},
    }


def settings_digest(values: dict) -> str:
    """Changes when any setting changes: an annotation that rolls the Airflow pods (no secret in it)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _storage_env(options: AirflowOptions, tgt: Target) -> list[dict[str, str]]:
    """dags/common/storage.py's root (and the connection that reaches it), for every Airflow pod."""
    if options.storage is None:
        return []
    env = [{"name": "AIRSTACK_STORAGE_BASE", "value": store_base(options.storage.base, tgt)}]
    if options.storage.conn_id:
        env.append({"name": "AIRSTACK_STORAGE_CONN_ID", "value": options.storage.conn_id})
    return env


def _remote_logging(options: AirflowOptions, tgt: Target) -> dict:
    """``[logging]`` for the amazon provider's S3 task handler; an empty conn id: the pods' AWS identity."""
    store = options.remote_logging
    if store is None:
        return {}
    return {"config": {"logging": {"remote_logging": "True", "remote_base_log_folder": store_base(store.base, tgt),
                                   "remote_log_conn_id": store.conn_id or ""}}}


def _celery() -> dict:
    """CeleryExecutor on the environment's broker: its Secret, flower, and workers the runtime image can run."""
    return {
        "redis": {"enabled": False},  # the broker is ElastiCache (infra/cloudformation/broker.yaml)
        # The runtime image (images.flower: flower is in its lock), by digest, started like the workers.
        "flower": {"enabled": True, "command": ["/usr/bin/env"]},
        "workers": {
            "celery": {"command": ["/usr/bin/env"]},  # ENTRYPOINT is `airflow`: run the chart's args as given
            "livenessProbe": {"command": ["sh", "-c", CELERY_PING]},
            "waitForMigrations": {"enabled": False},  # the chart's needs /entrypoint: schema_wait's runs instead
            # A Deployment on the shared logs volume, without a per-worker /clean-logs groomer.
            "persistence": {"enabled": False},
            "logGroomerSidecar": {"enabled": False},
        },
    }


FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
# What the api-server pods' sync-users init container runs (python3 -c), shipped in the payload.
USERS_SCRIPT = "charts/platform/files/sync_users.py"


def auth_problems(files: list[tuple[str, dict]]) -> list[str]:
    """A deploy's auth manager, as the official chart's values files set it (later files win), one line
    per problem (pure): SimpleAuthManager generates each user's password per api-server pod and has no
    shared users, so it is the local env's only."""
    where, manager = None, None
    for name, values in files:
        value = ((values.get("config") or {}).get("core") or {}).get("auth_manager")
        if value is not None:
            where, manager = name, str(value)
    if manager is None:
        return [f"{files[-1][0] if files else 'charts/airflow'}: config.core.auth_manager: not set: set "
                f"{FAB_AUTH_MANAGER} (the chart's default may change with its version)"]
    if manager.rsplit(".", 1)[-1] == SIMPLE_AUTH_MANAGER.rsplit(".", 1)[-1]:
        return [f"{where}: config.core.auth_manager: SimpleAuthManager is for the local env only (passwords "
                f"generated per api-server pod, no shared users): deploys use {FAB_AUTH_MANAGER}"]
    return []


OIDC_CONFIG = "charts/platform/files/webserver_config.py"


def with_oidc(values: dict, release: str, oidc: Oidc | None, config: str) -> dict:
    """The official chart's values, with (given settings' ``airflow.auth.oidc``) FAB's OIDC login: ``config``
    (files/webserver_config.py) as the api-server's webserver_config.py, the readable settings in
    AIRSTACK_OIDC and the client secret from Secret ``<release>-oidc`` (platform chart), never inline."""
    if oidc is None:
        return values
    secret = {"secretKeyRef": {"name": f"{release}-oidc", "key": "client-secret"}}
    env = [{"name": "AIRSTACK_OIDC", "value": json.dumps(oidc.public(), sort_keys=True)},
           {"name": "AIRSTACK_OIDC_CLIENT_SECRET", "valueFrom": secret}]
    api_server = values.get("apiServer") or {}
    return {**values, "apiServer": {**api_server, "apiServerConfig": config,
                                    "env": [*(api_server.get("env") or []), *env]}}


def users_sync_container(release: str, runtime_image: str, script: str) -> dict:
    """The api-server's init container that keeps FAB's users as settings say (files/sync_users.py).

    It runs before each api-server pod starts (after schema_wait's wait), so a change of users (which changes the
    settings digest, and so rolls the pods) is applied by the next rollout. Every input comes from Secrets."""
    def secret(name: str, key: str, optional: bool = False) -> dict:
        ref = {"name": name, "key": key, **({"optional": True} if optional else {})}
        return {"valueFrom": {"secretKeyRef": ref}}

    keys_secret, _ = render.secret_names(release)
    return {
        "name": "sync-users",
        "image": runtime_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-c"],  # the runtime image's ENTRYPOINT is `airflow`
        "args": [script],
        "env": [{"name": "AIRFLOW__CORE__AUTH_MANAGER", "value": FAB_AUTH_MANAGER},
                {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", **secret(f"{release}-metadata", "connection")},
                {"name": "AIRFLOW__API__SECRET_KEY", **secret(keys_secret, "api-secret-key")},
                {"name": "AIRSTACK_USERS", **secret(f"{release}-users", "users.json", optional=True)}],
        "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    }


def airflow_values(tgt: Target, runtime_image: str, worker_images: dict[str, str], digest: str,
                   options: AirflowOptions | None = None, users_script: str | None = None,
                   dag_bundles: list[dict] | None = None) -> dict:
    """The official chart's stdin values: the runtime image by content tag, the settings Secrets' names,
    what deploy.yaml's ``airflow`` section switches on, (given its script) the users' sync and (given them)
    the DAG bundles (:func:`airstack.dag_bundles.config_list`: the chart writes them to airflow.cfg)."""
    options = options or AirflowOptions()
    celery = options.executor == CELERY
    values = render.chart_values(tgt.airflow_release)
    images, image_config = _runtime_images(runtime_image, celery)
    # The broker Secret's name, whatever the executor: without it chart 1.19.0 renders its own
    # `<release>-broker-url` hook Secret from `data.brokerUrl`, which is empty here (`%!s(<nil>)`).
    # Only Celery pods read it (AIRFLOW__CELERY__BROKER_URL), and only then does the platform chart make it.
    data = {"metadataSecretName": f"{tgt.airflow_release}-metadata",
            "brokerUrlSecretName": broker_secret_name(tgt.airflow_release)}
    values.update({
        "executor": options.executor,
        "images": images,
        "data": data,
        # dags/common/images.py: worker_image(name) reads the deployed references from here.
        "env": [{"name": "AIRSTACK_IMAGES", "value": json.dumps(worker_images, sort_keys=True)},
                # dags/common/kpo.py starts project pods here (a preview environment has its own).
                {"name": "AIRSTACK_K8S_NAMESPACE", "value": tgt.namespace},
                *_storage_env(options, tgt)],
        "airflowPodAnnotations": {"airstack/settings-digest": digest},
        # The chart's statsd-exporter; the chart sets [metrics] statsd_on/statsd_host to it.
        "statsd": {"enabled": options.metrics.statsd},
    })
    values = merge_values(values, {"config": image_config}, _remote_logging(options, tgt))
    if options.database_cleanup:  # the chart's databaseCleanup CronJob, on the runtime image
        values.update(db_cleanup.values(options.database_cleanup, db_cleanup.runtime_airflow(paths.repo_root())))
    if users_script is not None:
        values["apiServer"] = {"extraInitContainers": [users_sync_container(tgt.airflow_release, runtime_image,
                                                                            users_script)]}
    if dag_bundles is not None:
        values["dagProcessor"] = {"dagBundleConfigList": dag_bundles}
    if celery:
        values.update(_celery())
    values = merge_values(values, ingress.chart_values(options.ingress, tgt.preview))  # deploy/ingress.py
    values = with_schema_wait(values, tgt.airflow_release, runtime_image)  # every Airflow pod waits for the schema
    return pod_security.harden(values)  # the containers added above: non-root, no escalation, no capability


def to_stdin(values: dict) -> str:
    """The values for ``--values -`` as JSON, which Helm's YAML parser reads with the same types.

    Every string is quoted, so text such as ``1e3``, ``0o17``, ``y``, ``N`` or ``+1E3`` stays text
    (PyYAML leaves those unquoted, and Helm reads them as numbers or booleans); non-ASCII is
    escaped, so that no character Helm's YAML 1.1 parser counts as a line break (U+2028) is folded.
    """
    return json.dumps(values, sort_keys=True, ensure_ascii=True, indent=1)


_MASK = re.compile(r"^<sha256:[0-9a-f]{8}>$")


def _masked(value) -> str:
    text = str(value)
    return text if _MASK.match(text) else f"<sha256:{hashlib.sha256(text.encode()).hexdigest()[:8]}>"


def installed_objects(manifest: str) -> list[dict]:
    """The objects a release keeps (``helm get manifest``): the manifest's, hooks left out."""
    return [d for d in yaml.safe_load_all(manifest) if isinstance(d, dict)
            and "helm.sh/hook" not in ((d.get("metadata") or {}).get("annotations") or {})]


def mask_secret_values(doc: dict) -> dict:
    """``doc`` with a Secret's values replaced by short digests (diffable, not readable); others as they are."""
    if doc.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(doc.get(field), dict):
                doc[field] = {k: _masked(v) for k, v in doc[field].items()}
    return doc


def mask_secrets(manifest: str) -> list[str]:
    """A manifest's lines with every Secret value replaced by a short digest (diffable, not readable)."""
    out: list[str] = []
    for doc in yaml.safe_load_all(manifest):
        if isinstance(doc, dict):
            out += ["---", *yaml.safe_dump(mask_secret_values(doc), sort_keys=True).splitlines()]
    return out


def merge_values(base: dict, *overrides: dict) -> dict:
    """Helm's coalescing of ``-f`` files (and of ``--values -``): maps merge key by key, anything else
    is replaced. Nothing given is changed."""
    result = copy.deepcopy(base)
    for override in overrides:
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merge_values(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result
