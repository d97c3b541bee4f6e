"""The auth policy of deploys (pure): FAB's auth manager, never SimpleAuthManager.

Deploys run FAB's auth manager (charts/airflow/values.yaml); :func:`auth_problems` refuses SimpleAuthManager,
whose passwords are generated per api-server pod (the local env's only).
"""

from __future__ import annotations

from airstack.airflow_env import SIMPLE_AUTH_MANAGER

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


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
