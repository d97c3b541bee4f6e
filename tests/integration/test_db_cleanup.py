"""The databaseCleanup CronJob's command (airstack.deploy.db_cleanup, as tests/deploy/test_db_cleanup.py sees it
rendered) run here, on a real Postgres migrated by this environment's Airflow (the runtime lock's), seeded with
six months of DAG runs, task instances, XComs and log events (airstack.upgrade.dbrows): the old rows go, the
recent ones stay.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

from airstack import paths, proc
from airstack.deploy import db_cleanup
from airstack.postgres.sql import create_database
from airstack.settings import deploy_file
from airstack.upgrade import dbmigrate

RETENTION = 90
DAYS = 180
ROWS = 2_000
# Each table and the column `airflow db clean` ages it by (airflow/utils/db_cleanup.py).
AGED_BY = {"dag_run": "start_date", "task_instance": "start_date", "xcom": "timestamp", "log": "dttm"}
# Rows this close to the cutoff are not judged: the script reads the clock later than the seed, and a run that
# started seconds before the cutoff, whose later tasks started after it, was seen kept.
MARGIN = timedelta(days=1)


def _ages(dsn: str, cutoff: datetime) -> dict[str, tuple[int, int]]:
    """(older than the cutoff, newer than it) per table, of the seeded rows (the clean's own audit-log event is
    not one), leaving out the margin around the cutoff."""
    found = {}
    for table, column in AGED_BY.items():
        ((old, new),) = dbmigrate._query(
            dsn, f'SELECT count(*) FILTER (WHERE "{column}" < %(old)s), count(*) FILTER (WHERE "{column}" > %(new)s) '
                 f"FROM {table} WHERE dag_id LIKE 'rehearsal\\_%%'", {"old": cutoff - MARGIN, "new": cutoff + MARGIN})
        found[table] = (old, new)
    return found


def test_the_cronjobs_clean_deletes_old_rows_and_keeps_recent_ones(postgres, tmp_path):
    assert version("apache-airflow") == db_cleanup.runtime_airflow(paths.repo_root())  # the image's Airflow
    dsn = create_database(postgres.dsn, "db_cleanup")
    home = tmp_path / "airflow-home"
    made = dbmigrate.airflow_db(sys.executable, ("migrate",), dsn, home, timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    now = datetime.now(timezone.utc)
    dbmigrate.seed(dsn, ROWS, now, days=DAYS)
    cutoff = now - timedelta(days=RETENTION)
    before, counts_before = _ages(dsn, cutoff), dbmigrate.counts(dsn)
    assert all(old > 0 and new > 0 for old, new in before.values()), before

    cleanup = deploy_file.DatabaseCleanup(retention_days=RETENTION)
    job = db_cleanup.values(cleanup, version("apache-airflow"))["databaseCleanup"]
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "AIRFLOW_HOME": str(home),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn}
    ran = proc.run([*job["command"], *job["args"]], env=env, inherit=(), check=False, timeout=600)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    assert "airflow db clean: rows older than" in ran.stdout

    after, counts_after = _ages(dsn, cutoff), dbmigrate.counts(dsn)
    print(f"\nairflow db clean, {RETENTION} days kept of {DAYS}: before {counts_before}, after {counts_after}")
    assert {table: old for table, (old, _) in after.items()} == dict.fromkeys(AGED_BY, 0), after
    assert {table: new for table, (_, new) in after.items()} == {table: new for table, (_, new) in before.items()}
    # Nothing archived: --skip-archive leaves no _airflow_deleted__* table behind.
    archived = dbmigrate._query(dsn, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_airflow\\_deleted%%'")
    assert archived == [(0,)]


def test_the_error_flag_is_used_exactly_where_airflow_has_it(tmp_path):
    """The module's version check against this Airflow's own `airflow db clean --help`."""
    result = proc.run([sys.executable, "-m", "airflow", "db", "clean", "--help"],
                      env={"AIRFLOW_HOME": str(tmp_path)}, inherit=(), timeout=120)
    has_flag = "--error-on-cleanup-failure" in result.stdout
    assert has_flag == bool(db_cleanup.error_flag(version("apache-airflow")))
