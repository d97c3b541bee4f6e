"""Settings rendered for Kubernetes and the official apache-airflow chart (pure; printed, never saved).

Two Secrets:
- ``<release>-settings-keys`` with ``fernet-key``, ``api-secret-key`` and ``jwt-secret``, the
  key names the chart's ``fernetKeySecretName``, ``apiSecretKeySecretName`` and
  ``jwtSecretName`` read (named so as not to collide with the Secrets the chart makes);
- ``<release>-settings-env`` with ``AIRFLOW_CONN_<ID>`` (Airflow's JSON connection format,
  or the URI) and ``AIRFLOW_VAR_<NAME>``, loaded into every Airflow pod by ``extraEnvFrom``.

Pools cannot be given as environment variables; the deploy imports them.

Parity: ``AIRFLOW_CONN_<ID>`` is always Airflow's JSON form of the fields that
``settings-apply`` writes to the database (:mod:`.fields`), also for a connection given as
a URI, so a pod and the database read the same ``conn_type``, host, port and so on.

Render safety: Linux refuses to start a program with an environment string longer than
``MAX_ARG_STRLEN`` (128 KiB, name and ``=`` included) and a string cannot hold a NUL, so a
pod given such a value through ``envFrom`` would not start. :func:`env_data` refuses them,
one line per value (:class:`RenderError`).
"""

from __future__ import annotations

import base64
import json

import yaml

from airstack.errors import ConfigError
from airstack.settings.fields import connection_fields, env_json
from airstack.settings.schema import Airflow, Connection

MAX_ARG_STRLEN = 128 * 1024  # Linux: the longest single "NAME=value" string execve accepts (PAGE_SIZE * 32)


class RenderError(ConfigError):
    """Values an environment variable cannot carry, one line each."""


def connection_env_value(conn: Connection) -> str:
    return env_json(connection_fields(conn))


def env_problems(variables: dict[str, str], file: str, where: dict[str, str]) -> list[str]:
    """One line per variable a process environment cannot hold (``where``: env name -> the file's field)."""
    lines = []
    for name, value in variables.items():
        size = len(f"{name}={value}".encode()) + 1  # the terminating NUL counts
        if "\x00" in value:
            lines.append(f"{file}: {where[name]}: contains a NUL character, which an environment variable cannot "
                         "carry: remove it")
        elif size > MAX_ARG_STRLEN:
            lines.append(f"{file}: {where[name]}: {size} bytes as {name}, over Linux's {MAX_ARG_STRLEN // 1024} KiB "
                         "limit for one environment variable (a pod given it would not start): keep the value in "
                         "a file or a secrets backend, and put its path here")
    return lines


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


def env_data(settings: Airflow, file: str = "settings") -> dict[str, str]:
    """``<release>-settings-env``: connections and variables as Airflow reads them from the environment.

    Raises :class:`RenderError` for any value an environment variable cannot carry.
    """
    variables = {f"AIRFLOW_CONN_{c.id.upper()}": connection_env_value(c) for c in settings.connections}
    variables |= {f"AIRFLOW_VAR_{name.upper()}": value for name, value in settings.variables.items()}
    where = {f"AIRFLOW_CONN_{c.id.upper()}": f"airflow.connections[{i}]" for i, c in enumerate(settings.connections)}
    where |= {f"AIRFLOW_VAR_{name.upper()}": f"airflow.variables.{name}" for name in settings.variables}
    problems = env_problems(variables, file, where)
    if problems:
        raise RenderError("\n".join(problems))
    return variables


def users_data(settings: Airflow) -> str:
    """``<release>-users`` (key ``users.json``): what charts/platform/files/sync_users.py reads; empty: no users."""
    if not settings.users:
        return ""
    return json.dumps([u.model_dump() for u in settings.users], sort_keys=True)


def k8s_secrets(settings: Airflow, env: str, release: str = "airflow", namespace: str | None = None) -> list[dict]:
    keys_name, env_name = secret_names(release)
    return [_secret(keys_name, namespace, keys_data(settings), env),
            _secret(env_name, namespace, env_data(settings, f"settings/{env}/secret.yaml"), env)]


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
