"""The environment Airflow processes get from this repository (tests, DAG checks, the native local env)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


# The local env's auth manager (every request an admin there); deploys refuse it
# (airstack.deploy.auth_policy.auth_problems) and run FAB's.
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def base_env(home: Path, dags_folder: Path, plugins_folder: Path) -> dict[str, str]:
    """Settings every Airflow process started by the tooling shares. No secrets here."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        # Every .py under dags/ is parsed, like the integrity check does (helpers live in
        # dags/common/, which .airflowignore excludes).
        "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def configure_process(env: Mapping[str, str]) -> None:
    """Configure the Airflow of *this* process with ``env``, before it is imported.

    Airflow reads its configuration from the process environment, so what runs Airflow in process
    (the local env's migration and settings import) sets it here, in one place; processes it starts
    get ``env`` passed explicitly instead.
    """
    os.environ.update(env)
