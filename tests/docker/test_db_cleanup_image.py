"""The databaseCleanup CronJob's container as the chart renders it (airstack.deploy.db_cleanup's command and args),
run in the runtime image itself (ENTRYPOINT `airflow`, no /entrypoint: bash and GNU date from its Debian base)
against a seeded Postgres on this host (host network, as the local env's native pods reach it)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

import pytest

from airstack.deploy import db_cleanup
from airstack.docker_client import get_client
from airstack.postgres.sql import create_database
from airstack.settings import deploy_file
from airstack.upgrade import dbmigrate
from tests.docker.test_images import built, scratch  # noqa: F401 - the runtime image, built (cached by content tag)
from tests.integration.test_db_cleanup import AGED_BY, DAYS, RETENTION, _ages

pytestmark = pytest.mark.docker


def test_the_cronjobs_command_runs_in_the_runtime_image(built, postgres, tmp_path):  # noqa: F811
    dsn = create_database(postgres.dsn, "db_cleanup_image")
    made = dbmigrate.airflow_db(sys.executable, ("migrate",), dsn, tmp_path / "home", timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    now = datetime.now(timezone.utc)
    dbmigrate.seed(dsn, 400, now, days=DAYS)
    cutoff = now - timedelta(days=RETENTION)
    before = _ages(dsn, cutoff)

    job = db_cleanup.values(deploy_file.DatabaseCleanup(retention_days=RETENTION),
                            version("apache-airflow"))["databaseCleanup"]
    output = get_client().containers.run(
        f"airflow:{built['airflow']['tag']}", job["args"], entrypoint=job["command"], network_mode="host",
        environment={"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn}, remove=True, stderr=True).decode()
    assert "airflow db clean: rows older than" in output, output[-2000:]

    after = _ages(dsn, cutoff)
    assert {t: old for t, (old, _) in after.items()} == dict.fromkeys(AGED_BY, 0), (after, output[-2000:])
    assert {t: new for t, (_, new) in after.items()} == {t: new for t, (_, new) in before.items()}
