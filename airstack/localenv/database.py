"""The local env's metadata database: migrated once per Airflow version, settings/local imported once per change.

Stamps in ``.airstack/local/`` remember what the database holds (``migrated-<runtime>``: Airflow's
version and the schema revision; ``applied-<runtime>``: the digest of the settings imported), so an
``up`` of an env that is current skips both. The SQL is :mod:`airstack.postgres.sql`'s.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from airstack.errors import AirstackError, CommandFailedError
from airstack.localenv import health
from airstack.localenv.config import LocalConfig
from airstack.localenv.runtime import Runtime
from airstack.postgres import sql

LOCAL_HOSTS = ("127.0.0.1", "localhost")


def ensure_local_roles(config: LocalConfig, dsn: str, settings) -> list[str]:
    """Postgres connections of settings/local that point at this env's Postgres get their role and database."""
    made = []
    for conn in settings.airflow.connections:
        if conn.type != "postgres" or conn.host not in LOCAL_HOSTS \
                or conn.port != config.postgres_port or not conn.login or conn.login == "airflow":
            continue
        sql.ensure_role(dsn, conn.login, conn.password or "")
        sql.ensure_database(dsn, conn.schema_ or conn.login, owner=conn.login)
        made.append(conn.id)
    return made


def migration_stamp(dsn: str) -> str:
    """What a migrated database looks like for this Airflow: its version and the schema revision."""
    from importlib.metadata import version

    return f"{version('apache-airflow-core')} {sql.schema_revision(dsn)}"


def stamp_file(config: LocalConfig, runtime: Runtime) -> Path:
    return config.state.parent / f"migrated-{runtime.name}"


def applied_file(config: LocalConfig, runtime: Runtime) -> Path:
    return config.state.parent / f"applied-{runtime.name}"


def already_migrated(config: LocalConfig, runtime: Runtime) -> bool:
    stamp = stamp_file(config, runtime)
    return stamp.is_file() and stamp.read_text() == migration_stamp(runtime.metadata_dsn)


def settings_to_import(config: LocalConfig, runtime: Runtime, settings, migrated: bool) -> str | None:
    """The digest to import settings/local under, or None when the database already holds exactly it."""
    from airstack.localenv import applied

    wanted = applied.digest(settings.airflow, config.postgres_port)
    if migrated and applied.unchanged(applied_file(config, runtime), wanted, runtime.metadata_dsn):
        return None
    return wanted


def migrate_and_import(config: LocalConfig, runtime: Runtime, settings, env: dict[str, str], *, migrate: bool,
                       verbose: bool, console: Console):
    """Migrate (unless current; ``airflow db migrate`` in a child, :func:`airstack.airflow_env.migrate`) and
    import settings/local (in this process, Airflow configured by ``env`` while it runs).

    Airflow's own lines (alembic, the ORM, the masker) go to the `up` log, not the terminal (with
    ``verbose``, to the terminal); a failure shows that log's last lines. Returns the connections given a
    role and database, and the import's actions.
    """
    from airstack import airflow_env
    from airstack.output import output_to

    dsn = runtime.metadata_dsn
    config.logs.mkdir(parents=True, exist_ok=True)
    log = config.log_file("up")
    try:
        with nullcontext() if verbose else output_to(log):
            if migrate:
                _migrate(dsn, env)
                stamp_file(config, runtime).write_text(migration_stamp(dsn))
            roles = ensure_local_roles(config, dsn, settings)
            with airflow_env.configured(env | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn}):
                from airstack.settings import importer

                return roles, importer.apply(settings.airflow)
    except CommandFailedError:  # the migration (its child's lines are in the log)
        _show_tail(console, "the migration", log)
        raise
    except AirstackError:
        raise  # one clear line already
    except Exception:
        _show_tail(console, "the migration or the settings import", log)
        raise


def _show_tail(console: Console, what: str, log: Path) -> None:
    console.print(f"{what} failed; last lines of {log}:\n{health.tail(log)}", markup=False, highlight=False)


def _migrate(dsn: str, env: dict[str, str]) -> None:
    """The migration's own lines (the child's) where this process's output goes now (the `up` log)."""
    import sys

    from airstack.airflow_env import migrate

    try:
        result = migrate(dsn, env)
    except CommandFailedError as exc:
        print(exc.stderr, file=sys.stderr)
        raise
    print(result.stdout + result.stderr, end="")
