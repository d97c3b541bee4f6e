"""The Airflow of a settings benchmark: its environment (empty DAG and plugin folders) on the benchmark's
Postgres, and this process pointed at it (migrated)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from airstack.airflow_env import base_env


def airflow_env(tmp: Path, dsn: str) -> dict[str, str]:
    """The Airflow environment of this process and of every child (empty DAG and plugin folders:
    no variant should pay for parsing the repository's code)."""
    from cryptography.fernet import Fernet

    for folder in ("home", "dags", "plugins"):
        (tmp / folder).mkdir()
    env = base_env(tmp / "home", tmp / "dags", tmp / "plugins")
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = dsn
    env["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()  # fresh, never stored
    return env


def configure_airflow(env: dict[str, str]) -> None:
    """Point this process's Airflow at the benchmark database and migrate it."""
    reconfigure = "airflow" in sys.modules  # an earlier benchmark of this run imported Airflow
    os.environ.update(env)
    from airstack import airflow_compat

    if reconfigure:
        airflow_compat.reconfigure_orm()
    airflow_compat.migrate(upgrade=False)
