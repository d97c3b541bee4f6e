"""``settings-import``: 50 connections + 50 variables imported into one real Postgres metadata database,
three ways: one ``airflow`` CLI process per item (the old way), airstack's importer in process (one
transaction), and airstack's importer as a whole command (one process: ``python -m airstack.bench
_settings-import-child CONNECTIONS VARIABLES``; only the counts travel in argv)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airstack import proc
from airstack.bench.airflow_db import airflow_env, configured_airflow
from airstack.bench.common import write_result


SETTINGS_IMPORT_CONNECTIONS = 50
SETTINGS_IMPORT_VARIABLES = 50
SETTINGS_IMPORT_GOAL = 100.0  # times faster than one airflow CLI process per item
BENCH_PREFIX = "bench_"  # every connection id and variable key the benchmark writes starts with it
# A hidden NAME: `python -m airstack.bench _settings-import-child CONNECTIONS VARIABLES` is the
# whole-command variant's process. Only the counts travel in argv; the values are generated inside.
SETTINGS_IMPORT_CHILD = "_settings-import-child"


def settings_import_data(connections: int = SETTINGS_IMPORT_CONNECTIONS,
                         variables: int = SETTINGS_IMPORT_VARIABLES) -> dict:
    """The benchmark's settings, shaped like a decrypted settings file.

    Synthetic benchmark values generated from the index, not real secrets: the CLI variant
    has to put them in argv (one of the faults of that way), airstack's variants never do.
    """
    return {"airflow": {
        "connections": [
            {"id": f"{BENCH_PREFIX}conn_{i:03d}", "type": "postgres", "host": f"db{i:03d}.bench.invalid",
             "port": 5432, "login": f"bench_user_{i:03d}", "password": f"bench-password-{i:03d}",
             "schema": f"bench_schema_{i:03d}"}
            for i in range(connections)
        ],
        "variables": {f"{BENCH_PREFIX}var_{i:03d}": f"value {i}" for i in range(variables)},
    }}


def settings_import_cli_argvs(data: dict, airflow: str) -> list[list[str]]:
    """The old way: one ``airflow connections add`` / ``airflow variables set`` process per item."""
    argvs = [
        [airflow, "connections", "add", c["id"], "--conn-type", c["type"], "--conn-host", c["host"],
         "--conn-login", c["login"], "--conn-password", c["password"], "--conn-port", str(c["port"]),
         "--conn-schema", c["schema"]]
        for c in data["airflow"]["connections"]
    ]
    argvs += [[airflow, "variables", "set", key, value] for key, value in data["airflow"]["variables"].items()]
    return argvs


def settings_import_child_argv(connections: int = SETTINGS_IMPORT_CONNECTIONS,
                               variables: int = SETTINGS_IMPORT_VARIABLES) -> list[str]:
    """Our whole command: one process that parses the settings and imports them (counts only in argv)."""
    return [sys.executable, "-m", "airstack.bench", SETTINGS_IMPORT_CHILD, str(connections), str(variables)]


def _import_settings(data: dict) -> int:
    """Validate ``data`` and import it with airstack's importer (one transaction); return the items changed."""
    from airstack.settings import importer
    from airstack.settings.plan import changes
    from airstack.settings.schema import parse_settings

    return len(changes(importer.apply(parse_settings(data, "bench").airflow)))


def settings_import_child(argv: list[str]) -> int:
    connections, variables = (int(a) for a in argv)
    _import_settings(settings_import_data(connections, variables))
    return 0


def _wipe_bench_rows() -> None:
    """Delete the benchmark's connections and variables (one session), so each variant starts empty."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from sqlalchemy import delete

    from airstack import airflow_compat

    with airflow_compat.session() as session:
        for column in (Connection.conn_id, Variable.key):
            session.execute(delete(column.class_).where(column.startswith(BENCH_PREFIX, autoescape=True))
                            .execution_options(synchronize_session=False))


def _check_imported(variant: str, data: dict) -> None:
    """All 100 items are in the database, as the settings say (names only in messages, never values)."""
    from airstack.settings import importer
    from airstack.settings.schema import parse_settings

    desired = importer.desired_state(parse_settings(data, "bench").airflow)
    now = importer.snapshot()
    conns = {k: v for k, v in now.connections.items() if k.startswith(BENCH_PREFIX)}
    variables = {k: v for k, v in now.variables.items() if k.startswith(BENCH_PREFIX)}
    if len(conns) != len(desired.connections) or len(variables) != len(desired.variables):
        raise SystemExit(f"settings-import: after {variant}, the database holds {len(conns)} of "
                         f"{len(desired.connections)} connections and {len(variables)} of "
                         f"{len(desired.variables)} variables")
    differ = sorted([k for k in conns if conns[k] != desired.connections.get(k)]
                    + [k for k in variables if variables[k] != desired.variables.get(k)])
    if differ:
        raise SystemExit(f"settings-import: after {variant}, {len(differ)} items differ from the settings: "
                         f"{', '.join(differ[:5])}")


def _run_variant(variant: str, data: dict, body: Callable[[], object]) -> float:
    """Wipe the benchmark rows, time ``body``, check the database holds every item; return the seconds."""
    _wipe_bench_rows()
    started = time.perf_counter()
    body()
    elapsed = time.perf_counter() - started
    _check_imported(variant, data)
    print(f"  {variant}: {elapsed:.2f} s")
    return elapsed


def _run_each(argvs: list[list[str]], env: dict[str, str]) -> None:
    for argv in argvs:
        proc.run(argv, env=env, timeout=300, what=f"{' '.join(argv[1:3])} {argv[3]}")


def run(args: argparse.Namespace) -> None:
    from airstack.postgres import choose_provider, postgres_server, probe

    probes = probe()
    choice = choose_provider(probes)
    data = settings_import_data()
    items = SETTINGS_IMPORT_CONNECTIONS + SETTINGS_IMPORT_VARIABLES
    airflow_cli = str(Path(sys.executable).parent / "airflow")
    with tempfile.TemporaryDirectory(prefix="airstack-bench-") as tmp, postgres_server(choice, probes) as server:
        print(f"  postgres: {choice.provider.value} ({choice.reason}); {server.redacted_dsn}")
        env = airflow_env(Path(tmp), server.dsn)
        with configured_airflow(env):
            old = _run_variant(f"one airflow CLI process per item ({items} processes)", data,
                               lambda: _run_each(settings_import_cli_argvs(data, airflow_cli), env))
            ours = _run_variant("airstack importer in process", data, lambda: _import_settings(data))
            whole = _run_variant("airstack importer as a whole command", data,
                                 lambda: proc.run(settings_import_child_argv(), env=env, timeout=300,
                                                  what="the settings-import child"))
    ratio, ratio_whole = old / ours, old / whole
    write_result(
        "settings-import", ratio, "x",
        f"{SETTINGS_IMPORT_CONNECTIONS} connections + {SETTINGS_IMPORT_VARIABLES} variables: one airflow CLI "
        f"process per item {old:.1f} s; airstack import {ours:.2f} s in process ({ratio:.0f}x), "
        f"{whole:.1f} s as a whole command ({ratio_whole:.0f}x); goal >= {SETTINGS_IMPORT_GOAL:g}x",
        old_seconds=round(old, 3), ours_in_process_seconds=round(ours, 3),
        ours_whole_command_seconds=round(whole, 3), ratio_whole_command=round(ratio_whole, 3),
        items=items, postgres_provider=choice.provider.value, goal=f">= {SETTINGS_IMPORT_GOAL:g}x",
    )
