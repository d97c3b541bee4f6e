"""What deploys check of an environment's ``settings/<env>/deploy.yaml`` beyond the file itself (pure).

The file is read and validated by :mod:`airstack.settings.deploy_file` (its one reader); its
:func:`load` and :class:`Environment` are named here for the deploy modules. Here: deploy.yaml against the
environment's settings and against the stacks' outputs, and the preview environments' names.
"""

from __future__ import annotations

import re

from airstack.errors import ConfigError
from airstack.settings.deploy_file import Environment, bucket_of, load  # noqa: F401 (load: for the deploy modules)


def settings_problems(env: Environment, secret_file: str, secret: dict) -> list[str]:
    """What deploy.yaml's ``airflow`` section needs from the environment's settings, one line each (pure).

    ``secret`` is settings/<env>/secret.yaml as stored: sops leaves connection ids and key names
    readable, so this runs before anything is decrypted, built or changed.
    """
    airflow = secret.get("airflow") if isinstance(secret, dict) else None
    airflow = airflow if isinstance(airflow, dict) else {}
    connections = {c.get("id") for c in airflow.get("connections") or [] if isinstance(c, dict)}
    options, problems = env.spec.airflow, []
    for field in ("remote_logging", "storage", "dag_bundle"):
        store = getattr(options, field)
        if store is not None and store.conn_id is not None and store.conn_id not in connections:
            problems.append(f"{env.file}: airflow.{field}.conn_id: no connection {store.conn_id!r} in {secret_file}")
    if options.executor == "CeleryExecutor" and airflow.get("celery_broker_url") in (None, ""):
        problems.append(f"{env.file}: airflow.executor: CeleryExecutor needs airflow.celery_broker_url in "
                        f"{secret_file} (the broker's URL: the broker stack's BrokerUrl output)")
    return problems


# The logs stack's outputs that name the buckets the Airflow pods' role may use (cluster.yaml).
BUCKET_OUTPUTS = {"remote_logging": "RemoteBaseLogFolder", "storage": "StorageBase"}


def stack_problems(env: Environment, outputs: dict[str, dict[str, str]]) -> list[str]:
    """deploy.yaml's buckets against the ones the ``logs`` stack made (pure; nothing to compare: no lines)."""
    logs = outputs.get("logs") or {}
    problems = []
    for field, output in BUCKET_OUTPUTS.items():
        store = getattr(env.spec.airflow, field)
        made = logs.get(output)
        if store is not None and made and bucket_of(made) != store.bucket:
            problems.append(f"{env.file}: airflow.{field}.base: bucket {store.bucket} is not the one the logs "
                            f"stack made ({output} {made}), which the Airflow pods' role may use")
    return problems


# A preview's release (and namespace) name: the official chart derives names of up to 23 more
# characters (`<release>-run-airflow-migrations`, a Job whose name is also a label value, so <= 63).
PREVIEW_NAME_MAX = 40


def preview_name(branch: str, base: str = "airflow") -> str:
    """A release/namespace name for a branch: ``airflow-<slug>``, a DNS-1123 label of at most 40 characters.

    Lowercase, anything else than letters and digits becomes ``-``; a long or altered branch
    name is cut and gets a short hash, so two branches never share an environment.
    """
    import hashlib

    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
    if not slug:
        raise ConfigError(f"branch {branch!r} has no letters or digits to name a preview environment after")
    name = f"{base}-{slug}"
    if len(name) > PREVIEW_NAME_MAX or slug != branch:
        digest = hashlib.sha256(branch.encode()).hexdigest()[:6]
        name = f"{name[:PREVIEW_NAME_MAX - 7].rstrip('-')}-{digest}"
    return name
