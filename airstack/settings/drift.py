"""The settings file against a running Airflow, through its REST API (``/api/v2``).

The API returns connections without their passwords (and may mask sensitive variables),
so those are compared for presence only; every other field is compared in full.
Authentication: ``AIRFLOW_API_TOKEN`` (a bearer token) from the environment, if set.
"""

from __future__ import annotations

import json
import os

from airstack.errors import AirstackError
from airstack.settings.plan import Action, State, plan

MASKED = "***"


def _get_all(client, path: str, key: str) -> list[dict]:
    items, offset = [], 0
    while True:
        response = client.get(path, params={"limit": 100, "offset": offset})
        if response.status_code in (401, 403):
            raise AirstackError(f"{response.request.url}: {response.status_code}; set AIRFLOW_API_TOKEN")
        response.raise_for_status()
        page = response.json()
        items += page[key]
        offset += len(page[key])
        if not page[key] or offset >= page.get("total_entries", 0):
            return items


def fetch_state(url: str, timeout: float = 10.0) -> State:
    import httpx

    token = os.environ.get("AIRFLOW_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/") + "/api/v2"
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
            conns = _get_all(client, "/connections", "connections")
            variables = _get_all(client, "/variables", "variables")
            pools = _get_all(client, "/pools", "pools")
    except httpx.HTTPError as exc:
        raise AirstackError(f"cannot read {base}: {type(exc).__name__}: {exc}") from None
    state = State()
    for c in conns:
        extra = json.loads(c["extra"]) if c.get("extra") else {}
        state.connections[c["connection_id"]] = {
            "conn_type": c.get("conn_type"), "description": c.get("description") or None, "host": c.get("host") or None,
            "port": c.get("port"), "login": c.get("login") or None, "schema": c.get("schema") or None, "extra": extra,
            "password": MASKED if c.get("password") else None,
        }
    state.variables = {v["key"]: v.get("value") for v in variables}
    state.pools = {p["name"]: {"slots": p["slots"], "description": p.get("description") or None,
                               "include_deferred": bool(p.get("include_deferred"))} for p in pools}
    return state


def _mask_like(desired: State, remote: State) -> State:
    """Make the file comparable with what the API shows: passwords (and masked variables) as presence."""
    out = State(pools=desired.pools)
    for cid, fields in desired.connections.items():
        out.connections[cid] = {**fields, "password": MASKED if fields.get("password") else None}
    for name, value in desired.variables.items():
        out.variables[name] = MASKED if remote.variables.get(name) == MASKED else value
    return out


def drift(settings_state: State, url: str) -> list[Action]:
    remote = fetch_state(url)
    return plan(_mask_like(settings_state, remote), remote, prune=True)
