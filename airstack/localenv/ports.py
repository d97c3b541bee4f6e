"""Ports per checkout: two clones (or worktrees) on one machine can both be up.

The first ``up`` of a checkout chooses its ports (8080 and 5433 when they are free and no other
checkout holds them, else the next free pair) and records them in this user's registry,
``$XDG_STATE_HOME/airstack/local-envs/<checkout id>.json``; every later command of the checkout
uses them. ``AIRSTACK_LOCAL_API_PORT`` and ``AIRSTACK_LOCAL_POSTGRES_PORT`` override them.
``clean`` forgets the checkout. When a port is taken, the registry names the checkout that holds it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

from airstack.localenv.config import API_PORT_ENV, PG_PORT_ENV, LocalConfig

DEFAULTS = {"api_port": 8080, "postgres_port": 5433}
TRIES = 200


def registry() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "airstack" / "local-envs"


def _entry(config: LocalConfig) -> Path:
    return registry() / f"{config.env_id}.json"


def others(config: LocalConfig) -> list[dict]:
    """The other checkouts' records (those whose folder is gone are forgotten on the way)."""
    out = []
    for path in sorted(registry().glob("*.json")) if registry().is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("root") == str(config.root):
            continue
        if not Path(record.get("root", "")).is_dir():
            path.unlink(missing_ok=True)
            continue
        out.append(record)
    return out


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def recorded(config: LocalConfig, environ: dict[str, str] | None = None) -> LocalConfig:
    """``config`` with the checkout's recorded ports, unless the environment sets them."""
    environ = os.environ if environ is None else environ
    try:
        record = json.loads(_entry(config).read_text())
    except (OSError, ValueError):
        return config
    ports = {key: int(record[key]) for key, variable in (("api_port", API_PORT_ENV), ("postgres_port", PG_PORT_ENV))
             if key in record and variable not in environ}
    return replace(config, **ports)


def claim(config: LocalConfig, environ: dict[str, str] | None = None) -> LocalConfig:
    """The ports ``up`` uses: the environment's, else the recorded ones, else a free pair no other checkout
    holds. Recorded for the next commands."""
    environ = os.environ if environ is None else environ
    if _entry(config).is_file():
        config = recorded(config, environ)
    else:
        held = {r.get(key) for r in others(config) for key in DEFAULTS}
        ports = {}
        for key, variable in (("api_port", API_PORT_ENV), ("postgres_port", PG_PORT_ENV)):
            if variable in environ:
                continue
            ports[key] = next((p for p in range(DEFAULTS[key], DEFAULTS[key] + TRIES)
                               if p not in held and p not in ports.values() and port_free(p)), DEFAULTS[key])
        config = replace(config, **ports)
    _entry(config).parent.mkdir(parents=True, exist_ok=True)
    _entry(config).write_text(json.dumps({"root": str(config.root), "api_port": config.api_port,
                                          "postgres_port": config.postgres_port}))
    return config


def forget(config: LocalConfig) -> None:
    _entry(config).unlink(missing_ok=True)


def taken(config: LocalConfig, port: int, who: str, variable: str) -> str:
    """The one line for a taken port: which other checkout holds it, when one does."""
    holder = next((r["root"] for r in others(config) if port in (r.get("api_port"), r.get("postgres_port"))), None)
    if holder:
        return (f"port {port} on 127.0.0.1 is taken by the local environment of {holder} ({who} needs it): "
                f"`nox -s down` there, or set {variable} here")
    return f"port {port} on 127.0.0.1 is taken: {who} needs it; free it or set {variable}"
