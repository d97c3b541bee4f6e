"""airstack.airflow_env.migrate, the one way a database is migrated (``up``, the tests, the benchmarks): a
child ``airflow db migrate`` on a real Postgres, this process's environment and Airflow left as they were."""

from __future__ import annotations

import os

import pytest

from airstack.airflow_env import migrate
from airstack.errors import CommandFailedError
from airstack.postgres.sql import create_database, schema_revision


def test_an_empty_database_gets_this_airflows_schema(postgres, tmp_path):
    dsn = create_database(postgres.dsn, f"migrate_{os.getpid()}")
    before = dict(os.environ)
    migrate(dsn, {"AIRFLOW_HOME": str(tmp_path)})
    first = schema_revision(dsn)
    assert first is not None
    migrate(dsn, {"AIRFLOW_HOME": str(tmp_path)})  # a current database: nothing to do, and no error
    assert schema_revision(dsn) == first
    assert dict(os.environ) == before


def test_a_database_it_cannot_reach_is_one_line(tmp_path):
    with pytest.raises(CommandFailedError, match=r"^airflow db migrate failed \(exit \d+\): ") as failed:
        migrate("postgresql+psycopg://nobody:wrong@127.0.0.1:9/none", {"AIRFLOW_HOME": str(tmp_path)})
    assert "\n" not in str(failed.value) and "wrong" not in str(failed.value)
