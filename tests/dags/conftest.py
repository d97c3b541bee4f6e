"""DAG tests: integrity reports for every file, and the connections/variables DAG runs need."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airstack import paths
from airstack.dagcheck.parse import FileReport, check_files, dag_files
from airstack.dagcheck.policy import DagPolicy, load_policy
from airstack.postgres import PostgresServer
from airstack.postgres.sql import create_database

NO_DAG_FILES = "<no DAG files>"


def dag_file_params(folder: Path) -> list:
    """One param per DAG file (id: its path); a failing sentinel when there is none."""
    files = dag_files(folder)
    if not files:
        return [pytest.param(None, id=NO_DAG_FILES)]
    return [pytest.param(f, id=f.relative_to(folder.parent).as_posix()) for f in files]


@pytest.fixture(scope="session")
def dag_policy() -> DagPolicy:
    return load_policy(paths.pyproject())


@pytest.fixture(scope="session")
def integrity_reports(dag_policy: DagPolicy) -> dict[str, FileReport]:
    """Every DAG file checked once (in this process: the repo has few files)."""
    folder = paths.dags_folder()
    reports = check_files(dag_files(folder), folder, dag_policy, workers=1)
    return {str((folder.parent / r.file).resolve()): r for r in reports}


# ------------------------------------------------------------------ settings for DAG runs --
# Until the settings issue imports settings/local, DAG runs get these, written to the
# metadata DB in one transaction, the way an import will.
VARIABLES = {"etl_min_order_amount": "10"}


def warehouse_connection(dsn: str) -> dict:
    parts = urlsplit(dsn)
    host = parts.hostname or dict(q.split("=", 1) for q in parts.query.split("&") if "=" in q).get("host")
    return {"conn_id": "warehouse_db", "conn_type": "postgres", "host": host, "port": parts.port,
            "login": parts.username, "password": parts.password, "schema": parts.path.lstrip("/")}


@pytest.fixture(scope="session")
def airflow_settings(airflow_db: PostgresServer) -> dict:
    """Connections and variables in the metadata DB (one transaction); a scratch `warehouse` database."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    warehouse = create_database(airflow_db.dsn, "warehouse")
    connections = [warehouse_connection(warehouse)]
    with create_session() as session:
        session.add_all(Connection(**c) for c in connections)
        session.add_all(Variable(key=k, val=v) for k, v in VARIABLES.items())
    return {"connections": connections, "variables": VARIABLES, "warehouse_dsn": warehouse}
