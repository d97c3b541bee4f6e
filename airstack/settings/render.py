"""Settings rendered for Kubernetes and the official apache-airflow chart (pure; printed, never saved).

Two Secrets:
- ``<release>-settings-keys`` with ``fernet-key``, ``api-secret-key`` and ``jwt-secret``, the
  key names the chart's ``fernetKeySecretName``, ``apiSecretKeySecretName`` and
  ``jwtSecretName`` read (named so as not to collide with the Secrets the chart makes);
- ``<release>-settings-env`` with ``AIRFLOW_CONN_<ID>`` (Airflow's JSON connection format,
  or the URI) and ``AIRFLOW_VAR_<NAME>``, loaded into every Airflow pod by ``extraEnvFrom``.

Pools cannot be given as environment variables; the deploy imports them.
"""

from __future__ import annotations

import base64
import json

import yaml

from airstack.settings.schema import Airflow, Connection


def connection_env_value(conn: Connection) -> str:
    if conn.uri is not None:
        return conn.uri
    fields = {"conn_type": conn.type, "description": conn.description, "host": conn.host, "port": conn.port,
              "login": conn.login, "password": conn.password, "schema": conn.schema_, "extra": conn.extra}
    return json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True)


def _secret(name: str, namespace: str | None, data: dict[str, str], env: str) -> dict:
    metadata = {"name": name, "labels": {"app.kubernetes.io/managed-by": "airstack",
                                         "airstack/settings-environment": env}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())}}


def secret_names(release: str) -> tuple[str, str]:
    return f"{release}-settings-keys", f"{release}-settings-env"


def keys_data(settings: Airflow) -> dict[str, str]:
    """``<release>-settings-keys``: the key names the official chart's ``*SecretName`` values read."""
    keys = {"fernet-key": settings.keys.airflow_fernet_key(), "api-secret-key": settings.keys.api_secret_key,
            "jwt-secret": settings.keys.jwt_secret}
    return {k: v for k, v in keys.items() if v}


def env_data(settings: Airflow) -> dict[str, str]:
    """``<release>-settings-env``: connections and variables as Airflow reads them from the environment."""
    variables = {f"AIRFLOW_CONN_{c.id.upper()}": connection_env_value(c) for c in settings.connections}
    variables |= {f"AIRFLOW_VAR_{name.upper()}": value for name, value in settings.variables.items()}
    return variables


def users_data(settings: Airflow) -> str:
    """``<release>-users`` (key ``users.json``): what charts/platform/files/sync_users.py reads; empty: no users."""
    if not settings.users:
        return ""
    return json.dumps([u.model_dump() for u in settings.users], sort_keys=True)


def k8s_secrets(settings: Airflow, env: str, release: str = "airflow", namespace: str | None = None) -> list[dict]:
    keys_name, env_name = secret_names(release)
    return [_secret(keys_name, namespace, keys_data(settings), env),
            _secret(env_name, namespace, env_data(settings), env)]


def chart_values(release: str = "airflow") -> dict:
    """The official chart's values that point at the rendered Secrets."""
    keys_name, env_name = secret_names(release)
    return {
        "fernetKeySecretName": keys_name,
        "apiSecretKeySecretName": keys_name,
        "jwtSecretName": keys_name,
        "extraEnvFrom": yaml.safe_dump([{"secretRef": {"name": env_name}}], sort_keys=False),
    }


def to_yaml(documents: list[dict]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)
