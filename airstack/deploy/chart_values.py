"""The Helm releases' stdin values (pure; nothing runs here).

Two releases, in order, in one namespace: ``platform`` (our chart: the settings Secrets, each
project's ConfigMap/Secret, the volumes) and ``airflow`` (the official chart, by version).
Everything secret travels in the stdin payload (``--values -``, :mod:`airstack.deploy.helm_binary`);
argv holds only names, paths and versions, so nothing secret shows in ``ps`` or in a log of the command line.

deploy.yaml's ``airflow`` section (:class:`AirflowOptions`) becomes chart values here:

- ``executor``: the official chart's ``executor``; CeleryExecutor adds the broker (ElastiCache,
  never the chart's Redis) through Secret ``<airflowRelease>-broker`` (the platform chart makes it
  from settings' ``celery_broker_url``), flower, and the worker overrides the runtime image needs;
- ``remote_logging``: ``config.logging`` (the amazon provider's S3 task handler);
- ``storage``: ``AIRSTACK_STORAGE_BASE``/``AIRSTACK_STORAGE_CONN_ID`` on every Airflow pod;
- ``metrics``: ``statsd.enabled`` (official chart), ``metrics.prometheusRules.enabled`` (platform).

Authentication: deploys run FAB's auth manager (:mod:`airstack.deploy.auth_policy`). Settings' ``airflow.users``
become Secret ``<release>-users`` (platform chart) and :func:`users_sync_container` keeps them in FAB's tables from
each api-server pod; with settings' ``airflow.auth.oidc``, :func:`with_oidc` adds FAB's OIDC login (the client secret
from Secret ``<release>-oidc``).
"""

from __future__ import annotations

import copy
import hashlib
import json

from airstack import paths
from airstack.deploy import db_cleanup, ingress, pod_security
from airstack.deploy.auth_policy import FAB_AUTH_MANAGER
from airstack.deploy.schema_wait import with_schema_wait
from airstack.deploy.target import Target, store_base
from airstack.settings import render
from airstack.settings.deploy_file import AirflowOptions
from airstack.settings.oidc import Oidc
from airstack.settings.schema import SettingsFile


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


# What the api-server pods' sync-users init container runs (python3 -c), shipped in the payload.
USERS_SCRIPT = "charts/platform/files/sync_users.py"


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
    the DAG bundles (:func:`airstack.git_bundle.config_list`: the chart writes them to airflow.cfg)."""
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


# The payload's lists of named items (env vars, init containers). Helm replaces a list that a later file gives
# again, so the payload would silently drop a values file's own entries: it carries them, first.
NAMED_LISTS = (("env",), ("apiServer", "env"),
               *((part, "extraInitContainers") for part in ("apiServer", "scheduler", "dagProcessor", "triggerer",
                                                            "workers")))


def keeping_listed(payload: dict, files: list[dict]) -> dict:
    """``payload`` whose named lists (:data:`NAMED_LISTS`) also hold the values files' entries, before its own;
    an entry the payload names too is the payload's (pure; nothing given is changed)."""
    given = merge_values({}, *files)
    result = copy.deepcopy(payload)
    for path in NAMED_LISTS:
        *parents, key = path
        ours, theirs = result, given
        for part in parents:
            ours, theirs = (ours or {}).get(part), (theirs or {}).get(part)
        if not isinstance(ours, dict) or not isinstance((theirs or {}).get(key), list) or key not in ours:
            continue
        named = {item.get("name") for item in ours[key] if isinstance(item, dict)}
        kept = [item for item in theirs[key] if not (isinstance(item, dict) and item.get("name") in named)]
        ours[key] = [*copy.deepcopy(kept), *ours[key]]
    return result
