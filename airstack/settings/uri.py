"""Airflow 3.3's connection URI parser (``Connection._parse_from_uri``), without Airflow.

The deploys do not import Airflow (seconds of imports for one parser), yet ``settings-render``
must give pods the fields the database holds. ``tests/integration/test_settings_render_parity.py``
holds this parser to Airflow's on URIs of every shape. A URI Airflow would refuse, or whose
port is not a number, is a ValueError here.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


def _hostname(parts) -> str:
    hostname = unquote(parts.hostname or "")
    if "/" in hostname:
        hostname = parts.netloc
        if "@" in hostname:
            hostname = hostname.rsplit("@", 1)[1]
        if ":" in hostname:
            hostname = hostname.split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


def _query_extra(query_text: str) -> Any:
    """``extra`` from the query: ``__extra__`` as JSON, else each parameter (JSON-decoded where it can be)."""
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    if "__extra__" in query:
        try:
            extra = json.loads(query["__extra__"])
        except ValueError:
            raise ValueError("uri: __extra__ is not valid JSON") from None
        if not isinstance(extra, dict):
            raise ValueError("uri: __extra__ must be a JSON object")
        return extra
    for key, value in query.items():
        try:
            if value:
                query[key] = json.loads(value)
        except ValueError:
            pass
    return query


def parse_uri(uri: str) -> dict[str, Any]:
    """Host, port, login, password, schema and extra of a connection URI, as Airflow 3.3 reads them."""
    scheme = urlsplit(uri).scheme
    if uri.count("://") > 2:
        raise ValueError("uri has more than two '://': Airflow cannot parse it")
    with_protocol = uri.count("://") == 2
    rest = uri.replace(f"{scheme}://", "" if with_protocol else "//")  # every occurrence, as Airflow does
    if with_protocol and any(c in rest.split("://", 1)[0] for c in "@:"):
        raise ValueError("uri: Airflow cannot parse it (scheme://protocol://host: the protocol may not hold '@' "
                         "or ':', nor repeat the scheme)")
    parts = urlsplit(rest)
    host = _hostname(parts)
    if host and with_protocol:
        host = f"{parts.scheme}://{host}"
    path = parts.path[1:]
    extra = _query_extra(parts.query) if parts.query else None
    try:
        port = parts.port
    except ValueError:
        raise ValueError("uri: the port must be a number from 1 to 65535") from None
    return {"host": host, "port": port, "login": unquote(parts.username) if parts.username else parts.username,
            # Airflow's password setter ignores an empty one: `user:@host` has no password.
            "password": unquote(parts.password) if parts.password else None,
            "schema": unquote(path) if path else path, "extra": extra or None}
