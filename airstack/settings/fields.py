"""A connection's fields as Airflow holds them: one reading for the database and for the pods.

``settings-apply`` writes these fields to the metadata database and ``settings-render``
gives pods the same fields as ``AIRFLOW_CONN_<ID>`` (Airflow's JSON form), so the two can
never disagree. A connection given as a URI is parsed the way Airflow 3.3 parses one
(:mod:`.uri`). The file's ``type`` is the ``conn_type`` either way.
"""

from __future__ import annotations

import json
from typing import Any

from airstack.settings.schema import Connection
from airstack.settings.uri import parse_uri

FIELDS = ("conn_type", "description", "host", "port", "login", "password", "schema", "extra")


def connection_fields(conn: Connection) -> dict[str, Any]:
    """The fields of :data:`FIELDS` (``extra`` a dict or None).

    Values are exact: an empty string stays an empty string. Keep the result in memory only.
    """
    if conn.uri is None:
        return {"conn_type": conn.type, "description": conn.description, "host": conn.host, "port": conn.port,
                "login": conn.login, "password": conn.password, "schema": conn.schema_, "extra": conn.extra}
    return {"conn_type": conn.type, "description": conn.description, **parse_uri(conn.uri)}


def env_json(fields: dict[str, Any]) -> str:
    """Airflow's JSON connection format (``AIRFLOW_CONN_<ID>``): every field that is not None, empty strings kept."""
    return json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True)
