"""Files that read and write the same locally and in the cloud (seed 004's fs abstraction).

A task asks for ``storage_root() / "project" / "file.csv"`` and gets an Airflow
``ObjectStoragePath``: the same ``open()``, ``write_text()``, ``iterdir()``, ``exists()`` whether
the base is a local folder or ``s3://``. The base comes from the environment, never from the
DAG file:

- ``AIRSTACK_STORAGE_BASE``: ``s3://bucket/prefix`` in integration and production (deploy.yaml
  ``airflow.storage``, set on every Airflow pod by the deploy); the local env's data folder
  (``.airstack/local/data/storage``), or the local S3 stand-in with ``nox -s up -- --s3``;
- ``AIRSTACK_STORAGE_CONN_ID``: the Airflow connection that reaches it (optional: without one,
  S3 uses the pod's own AWS identity);
- neither set (tests, an ad-hoc ``airflow dags test``): a ``storage`` folder in ``AIRFLOW_HOME``.

Call it inside tasks, not at parse time: the DAG policy forbids I/O while a file is parsed.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_ENV = "AIRSTACK_STORAGE_BASE"
CONN_ENV = "AIRSTACK_STORAGE_CONN_ID"


def storage_base(environ=None) -> tuple[str, str | None]:
    """(base URL, connection id) for this environment: pure, for tests and for ``storage_root``."""
    environ = os.environ if environ is None else environ
    base = environ.get(BASE_ENV, "").strip()
    if not base:
        home = Path(environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
        base = (home / "storage").resolve().as_uri()
    elif "://" not in base:  # a plain path: a local folder
        base = Path(base).resolve().as_uri()
    return base.rstrip("/"), environ.get(CONN_ENV) or None


def storage_root(environ=None):
    """The root of this environment's storage as an ``ObjectStoragePath`` (created when local)."""
    from airflow.sdk import ObjectStoragePath

    base, conn_id = storage_base(environ)
    root = ObjectStoragePath(base, conn_id=conn_id)
    if base.startswith("file://"):
        root.mkdir(parents=True, exist_ok=True)
    return root
