"""The local env's metadata database: migrated once per Airflow version, settings/local imported once per change.

Stamps in ``.airstack/local/`` remember what the database holds (``migrated-<runtime>``: Airflow's
version and the schema revision; ``applied-<runtime>``: the digest of the settings imported), so an
``up`` of an env that is current skips both. The SQL is :mod:`airstack.postgres.sql`'s.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from airstack import airflow_compat
from airstack.errors import AirstackError
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
    """Migrate (unless current) and import settings/local, in this process, with Airflow configured by ``env``.

    Airflow's own lines (alembic, the ORM, the masker) go to the `up` log, not the terminal (with
    ``verbose``, to the terminal); a failure shows that log's last lines. Returns the connections given a
    role and database, and the import's actions.
    """
    from airstack.airflow_env import configure_process

    dsn = runtime.metadata_dsn
    configure_process(env | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn})
    from airstack.output import output_to
    from airstack.settings import importer

    config.logs.mkdir(parents=True, exist_ok=True)
    log = config.log_file("up")
    try:
        with nullcontext() if verbose else output_to(log):
            if migrate:
                airflow_compat.migrate()
                stamp_file(config, runtime).write_text(migration_stamp(dsn))
            roles = ensure_local_roles(config, dsn, settings)
            return roles, importer.apply(settings.airflow)
    except AirstackError:
        raise  # one clear line already
    except Exception:
        console.print(f"the migration or the settings import failed; last lines of {log}:\n{health.tail(log)}",
                      markup=False, highlight=False)
        raise
