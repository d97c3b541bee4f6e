"""``--db-rows``'s side effects on a real Postgres: a small metadata database seeded at the lock's Airflow (3.3.2),
moved to 3.2.2 (a throwaway venv made as the rehearsal makes its candidate) and back, schema revisions and rows
checked at each stage; and a move that Airflow refuses, reported as such. Minutes (the 3.2.2 venv is installed
from uv's cache)."""

from __future__ import annotations

import shutil
import sys
from importlib.metadata import version

import pytest

from airstack import paths
from airstack.upgrade import dbmigrate, steps

CURRENT, OLDER = "3.3.2", "3.2.2"
HEADS = {"3.3.2": "d2f4e1b3c5a7", "3.2.2": "1d6611b6ab7c"}  # airflow.utils.db._REVISION_HEADS_MAP (3.3.0, 3.2.0)
ROWS = 505


@pytest.fixture(scope="module")
def older_python(tmp_path_factory) -> str:
    assert version("apache-airflow") == CURRENT, "the lock moved: update CURRENT, HEADS and the seed's schema"
    uv = [shutil.which("uv") or pytest.skip("uv is not on PATH")]
    scratch = tmp_path_factory.mktemp("airflow-older")
    steps.compile_candidate(paths.repo_root(), scratch, (("apache-airflow", OLDER),), uv, f"Airflow {OLDER}")
    return steps.install(scratch, uv)


def _revision(dsn: str) -> str:
    return dbmigrate._query(dsn, "SELECT version_num FROM alembic_version")[0][0]


def test_a_seeded_database_goes_to_the_older_schema_and_back(postgres, older_python, tmp_path):
    seen = []
    dsn = dbmigrate.pg.with_database(postgres.dsn, dbmigrate.DATABASE)

    def say(what: str) -> None:  # called before each move: the schema as the previous step left it
        if not what.startswith("seeding"):
            seen.append((what, _revision(dsn), dbmigrate.counts(dsn)["task_instance"]))

    result = dbmigrate.measure(postgres.dsn, ROWS, {"current": sys.executable, "target": older_python}, CURRENT,
                               OLDER, tmp_path, say=say)
    assert result.ok, result
    assert result.counts == {"dag_run": 51, "task_instance": ROWS, "xcom": ROWS, "log": ROWS}
    assert [(s.direction, s.ok) for s in result.steps] == [("downgrade", True), ("upgrade", True)]
    assert result.downgrade_path is True
    assert [(what.split(" (")[0], revision, n) for what, revision, n in seen] == [
        (f"airflow db downgrade --to-version {OLDER} --yes", HEADS[CURRENT], ROWS),
        ("airflow db migrate", HEADS[OLDER], ROWS)]
    assert _revision(dsn) == HEADS[CURRENT]  # back, every seeded row kept (each `airflow db` adds an audit event)
    after = dbmigrate.counts(dsn)
    assert after["log"] >= ROWS and {**after, "log": ROWS} == result.counts
    assert result.size > result.empty_size > 0 and all(s.size_after > 0 for s in result.steps)
    assert [name for name, _ in result.tables][:1] == ["task_instance"]


def test_a_move_airflow_refuses_is_reported_with_its_reason(postgres, tmp_path):
    result = dbmigrate.measure(postgres.dsn, 20, {"current": sys.executable}, CURRENT, "2.0.0", tmp_path)
    (step,) = result.steps
    assert not step.ok and step.direction == "downgrade" and result.downgrade_path is False
    assert "exit 1" in step.error and "2.0.0" in step.error, step.error
    dsn = dbmigrate.pg.with_database(postgres.dsn, dbmigrate.DATABASE)
    assert _revision(dsn) == HEADS[CURRENT] and dbmigrate.counts(dsn)["task_instance"] == 20
