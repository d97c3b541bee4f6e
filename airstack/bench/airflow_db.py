"""The Airflow of a settings benchmark: its environment (empty DAG and plugin folders) on the benchmark's
Postgres (migrated), and this process pointed at it while a benchmark runs."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from airstack.airflow_env import base_env, configured, migrate


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


@contextlib.contextmanager
def configured_airflow(env: dict[str, str]) -> Iterator[None]:
    """Migrate the benchmark database (``airflow db migrate`` in another process), then point this process's
    Airflow at it while the block runs."""
    migrate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env)
    reconfigure = "airflow" in sys.modules  # an earlier benchmark of this run imported Airflow
    with configured(env):
        from airstack import airflow_compat

        if reconfigure:
            airflow_compat.reconfigure_orm()
        try:
            yield
        finally:
            airflow_compat.disconnect(orm=True)
