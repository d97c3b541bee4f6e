"""``--db-rows N``'s side effects: a Postgres, a metadata database seeded at the current version, each
schema move timed (the plan and the figures are :mod:`airstack.upgrade.dbrows`'s).

Postgres comes from the gate's provider (:mod:`airstack.postgres`: an external DSN, a container, the
embedded server). Each ``airflow db`` command runs with one side's interpreter, the connection in its
environment (never in argv), in a scratch ``AIRFLOW_HOME``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from airstack import proc
from airstack.errors import AirstackError
from airstack.postgres import sql as pg
from airstack.upgrade import dbrows

DATABASE = "airstack_db_rows"
MOVE_TIMEOUT = 4 * 3600.0
TOP_TABLES = 5
DAYS = 365.0


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The gate's Postgres (its provider chosen as for the tests); its DSN."""
    from airstack.postgres import choose_provider, postgres_server, probe

    probes = probe()
    with postgres_server(choose_provider(probes), probes) as running:
        yield running.dsn


def airflow_db(python: str, args: tuple[str, ...], dsn: str, home: Path, timeout: float = MOVE_TIMEOUT) -> proc.Result:
    """``airflow db ARGS`` with ``python``'s Airflow on ``dsn`` (not checked: the caller reads the exit code)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn,
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    return proc.run([python, "-m", "airflow", "db", *args], env=env, inherit=(), cwd=home, check=False,
                    timeout=timeout, what=f"airflow db {args[0]}")


def _query(dsn: str, statement: str, params: dict | None = None) -> list[tuple]:
    with contextlib.closing(pg.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def seed(dsn: str, rows: int, now: datetime, days: float = DAYS) -> None:
    """The seed's statements in one transaction, then ``VACUUM ANALYZE`` (settled sizes and plans)."""
    with contextlib.closing(pg.connect(dsn)) as conn:
        with conn, conn.cursor() as cur:
            for statement, params in dbrows.seed_statements(rows, now, days):
                cur.execute(statement, params)
    pg.execute_autocommit(dsn, "VACUUM ANALYZE")


def counts(dsn: str) -> dict[str, int]:
    return {table: int(n) for table, n in _query(dsn, dbrows.COUNT_SQL)}


def size(dsn: str) -> int:
    return int(_query(dsn, dbrows.SIZE_SQL)[0][0])


def largest_tables(dsn: str, limit: int = TOP_TABLES) -> list[tuple[str, int]]:
    return [(name, int(n)) for name, n in _query(dsn, dbrows.TABLES_SQL, {"limit": limit})]


def _failure(result: proc.Result) -> str:
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    return f"exit {result.returncode}: {lines[-1][:300] if lines else 'no output'}"


def measure(server_dsn: str, rows: int, pythons: dict[str, str], current: str, target: str, scratch: Path,
            now: datetime | None = None, say: Callable[[str], None] = lambda _: None) -> dbrows.DbRehearsal:
    """Seed a fresh database at ``current`` (``pythons["current"]``'s ``airflow db migrate``), then move it to
    ``target`` and back, each move timed and sized. A failure is recorded and ends the rehearsal."""
    result = dbrows.DbRehearsal(rows, current, target)
    dsn = pg.create_database(server_dsn, DATABASE)
    home = scratch / "db-rows-home"
    made = airflow_db(pythons["current"], ("migrate",), dsn, home)
    if made.returncode != 0:
        result.error = f"the current Airflow could not create its schema: {_failure(made)}"
        return result
    result.empty_size = size(dsn)
    say(f"seeding {rows:,} task instances")
    started = time.perf_counter()
    seed(dsn, rows, now or datetime.now(timezone.utc))
    result.seed_seconds = round(time.perf_counter() - started, 1)
    result.size, result.counts, result.tables = size(dsn), counts(dsn), largest_tables(dsn)
    for move in dbrows.moves(current, target):
        say(move.title)
        started = time.perf_counter()
        ran = airflow_db(pythons[move.runner], move.args, dsn, home)
        step = dbrows.Step(move.title, move.direction, round(time.perf_counter() - started, 1), ran.returncode == 0)
        result.steps.append(step)
        if not step.ok:
            step.error = _failure(ran)
            break
        step.size_after = size(dsn)
    return result


def rehearse(rows: int, pythons: dict[str, str], current: str, target: str, scratch: Path,
             say: Callable[[str], None] = lambda _: None) -> dbrows.DbRehearsal:
    """:func:`measure` on the gate's Postgres; a Postgres that cannot start is the result's error."""
    try:
        with server() as dsn:
            return measure(dsn, rows, pythons, current, target, scratch, say=say)
    except AirstackError as exc:
        return dbrows.DbRehearsal(rows, current, target, error=f"Postgres: {exc}")
