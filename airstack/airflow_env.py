"""The environment Airflow processes get from this repository (tests, DAG checks, the native local env), and
the one module of ``airstack/`` that writes this process's environment (``tests/unit/test_structure.py``).

Airflow reads its configuration from the process environment. A child process gets it through ``env=``
(:mod:`airstack.proc`); Airflow running in *this* process gets it from :func:`configured`, for the work
that needs it, and the previous values come back when that work ends. Airflow reads some of it when
``airflow`` is first imported: what must hold for a whole run opens :func:`configured` in its ``main``
(or, in a pool worker, which has no ``with`` to span its life, :func:`configure_process`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from airstack import proc


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


@contextlib.contextmanager
def configured(env: Mapping[str, str | None]) -> Iterator[None]:
    """This process's environment with ``env`` in it (a None value: the variable unset) while the block runs;
    on exit, also on an exception, each variable of ``env`` is back as it was: its old value, or unset."""
    saved = {name: os.environ.get(name) for name in env}
    try:
        _put(env)
        yield
    finally:
        _put(saved)


def _put(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


_PROCESS = contextlib.ExitStack()
atexit.register(_PROCESS.close)


def configure_process(env: Mapping[str, str | None]) -> None:
    """:func:`configured` for the rest of this process's life: a pool worker's initializer (its work spans
    the calls it is sent, which no ``with`` can enclose). Restored at the interpreter's exit."""
    _PROCESS.enter_context(configured(env))


def migrate(dsn: str, env: Mapping[str, str] | None = None) -> proc.Result:
    """Migrate Airflow's metadata database ``dsn`` to this Airflow's schema: ``airflow db migrate`` (which
    creates the tables of an empty database) in a child of this environment's Python, this process's
    environment with ``env`` and ``dsn`` over it; this process's Airflow (imported or not) is left as it was.
    The one way the repository migrates a database: ``up``, the tests' and the benchmarks' databases. Its
    output is returned (a failure: :class:`airstack.errors.CommandFailedError`, with the child's stderr)."""
    return proc.run([sys.executable, "-m", "airflow", "db", "migrate"],
                    env={**(env or {}), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn}, what="airflow db migrate")
