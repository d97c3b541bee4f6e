"""Every Airflow pod waits for the schema its image expects before it starts (pure; chart values only).

The official chart (1.19.0) has this as ``<component>.waitForMigrations``: an init container whose
``args`` are ``airflow db check-migrations ...``, with no ``command``, counting on the apache/airflow
image's ``/entrypoint``. The runtime image (images/airflow) has ``ENTRYPOINT ["airflow"]`` and no
/entrypoint, so that container would run ``airflow airflow db ...`` and fail: the chart's is left off
(charts/airflow/values.yaml) and :func:`with_schema_wait` adds ours, first of each pod's init containers:
the same command with ``command`` set, which does not depend on the image's entrypoint.

``airflow db check-migrations`` polls once a second until the database's Alembic heads are the ones
of the Airflow in the image, and the DB managers of its providers (FAB's ``ab_*`` tables) are
migrated too; it exits 1 after :data:`WAIT_SECONDS`. So a pod of a new release starts once the
migration Job (``migrateDatabaseJob``) has finished, and a pod of an older release never starts on
a schema ahead of it. A Deployment's pod whose wait ran out is restarted by Kubernetes and waits
again; a KubernetesExecutor task pod fails, and the task is retried as its retries say.

Pods that wait: scheduler, api-server (its ``sync-users`` container runs after the wait, on FAB's
migrated tables), dag-processor, triggerer, and ``workers``: the Celery workers' Deployment and the
KubernetesExecutor's pod template both take ``workers.extraInitContainers``. The migration Job does
not wait (it is what migrates); flower does not use the metadata database.
"""

from __future__ import annotations

import copy

NAME = "wait-for-migrations"
# An hour: Airflow users report migrations of 16 minutes to more than an hour on large metadata databases.
WAIT_SECONDS = 3600
COMPONENTS = ("scheduler", "apiServer", "dagProcessor", "triggerer", "workers")
# The chart's airflow.cfg (ConfigMap <release>-config, volume `config` of every Airflow pod), as the chart's own
# wait container mounts it: the same [core]/[database] settings as the component it runs before.
CONFIG_MOUNT = {"name": "config", "mountPath": "/opt/airflow/airflow.cfg", "subPath": "airflow.cfg", "readOnly": True}


def command(wait_seconds: int = WAIT_SECONDS) -> list[str]:
    """What the init container runs, whatever the image's ENTRYPOINT (it is the container's ``command``)."""
    return ["airflow", "db", "check-migrations", f"--migration-wait-timeout={wait_seconds}"]


def wait_container(release: str, runtime_image: str, wait_seconds: int = WAIT_SECONDS) -> dict:
    """The init container: the runtime image, the metadata connection from Secret ``<release>-metadata``
    (the platform chart's, which the chart's components read too)."""
    connection = {"secretKeyRef": {"name": f"{release}-metadata", "key": "connection"}}
    return {
        "name": NAME,
        "image": runtime_image,
        "imagePullPolicy": "IfNotPresent",
        "command": command(wait_seconds),
        "env": [{"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "valueFrom": connection},
                {"name": "AIRFLOW__LOGGING__LOGGING_LEVEL", "value": "WARNING"}],
        "volumeMounts": [dict(CONFIG_MOUNT)],
        "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    }


def with_schema_wait(values: dict, release: str, runtime_image: str, wait_seconds: int = WAIT_SECONDS) -> dict:
    """The official chart's values with the wait first of each Airflow pod's init containers (``values`` is not
    changed); init containers already there (sync-users) run after it, in their order."""
    result = copy.deepcopy(values)
    wait = wait_container(release, runtime_image, wait_seconds)
    for component in COMPONENTS:
        section = result.setdefault(component, {})
        others = [c for c in section.get("extraInitContainers") or [] if c.get("name") != NAME]
        section["extraInitContainers"] = [copy.deepcopy(wait), *others]
    return result
