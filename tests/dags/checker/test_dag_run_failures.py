"""A failed DAG run says why: the task, its exception, where in the DAG file, the last lines of its log.

Real runs (airstack.dagtools.runs: dag.test() in a worker forked from this process, on a copy of the
metadata database); the DAG files are written to a scratch folder.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from airstack import paths, proc
from airstack.airflow_env import migrate
from airstack.dagtools import runs
from airstack.postgres.sql import create_database

pytestmark = pytest.mark.postgres

HEADER = """\
import pendulum
from airflow.sdk import DAG, dag, task
from airflow.providers.standard.operators.empty import EmptyOperator
ARGS = dict(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["example"])
"""
FILES = {
    # retries=1 with a 5-minute delay: dag.test() would wait for the retry; the gate fails at once.
    "fails.py": HEADER + """
import datetime

@dag(**ARGS, default_args={"owner": "team", "retries": 1, "retry_delay": datetime.timedelta(minutes=5)})
def fails():
    @task
    def extract():
        print("extracting rows")
        return 3

    @task
    def validate(n):
        print(f"validating {n} rows")
        raise ValueError(f"expected 4 rows, got {n}")

    validate(extract())

fails()
""",
    # A task attached with dag= after the `with` block: Airflow's process_file returns the DAG twice.
    "attached_later.py": HEADER + """
with DAG("attached_later", **ARGS, default_args={"owner": "team", "retries": 1}) as the_dag:
    first = EmptyOperator(task_id="first")
second = EmptyOperator(task_id="second", dag=the_dag)
first >> second
""",
}


@pytest.fixture(scope="module")
def scratch_dags(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "dags"
    folder.mkdir()
    for name, source in FILES.items():
        (folder / name).write_text(textwrap.dedent(source))
    return folder


@pytest.fixture(scope="module")
def outcomes(scratch_dags, postgres, tmp_path_factory) -> dict[str, list[runs.DagOutcome]]:
    """The scratch DAGs run on a database of their own (migrated in another process: this one's stays)."""
    database = create_database(postgres.dsn, f"dag_run_failures_{os.getpid()}")
    migrate(database)
    runs.warm_execution_api()
    files = sorted(scratch_dags.glob("*.py"))
    started = runs.start(files, scratch_dags, {}, [database], tmp_path_factory.mktemp("logs"), timeout=240)
    try:
        return {f.name: started.outcomes(f) for f in files}
    finally:
        started.close()


def test_a_failed_task_names_its_exception_line_and_log(outcomes):
    (outcome,) = outcomes["fails.py"]
    assert not outcome.ok and outcome.state == "failed"
    message = outcome.explain()
    first = message.splitlines()[0]
    assert first == "fails (dags/fails.py): task 'validate' failed: ValueError: expected 4 rows, got 3", message
    assert "at dags/fails.py, line 18, in validate" in message
    assert "| validating 3 rows" in message  # the task's own output, from its log
    assert "extracting rows" not in message  # another task's log is not this task's
    assert Path(outcome.log_file).is_file() and "expected 4 rows" in Path(outcome.log_file).read_text()


def test_a_failed_task_is_not_retried(outcomes):
    """The policy asks for retries; in the test, a failure is final (no wait for retry_delay)."""
    (outcome,) = outcomes["fails.py"]
    assert outcome.tasks == {"extract": "success", "validate": "failed"}
    assert outcome.seconds < 60, f"the run waited {outcome.seconds:.0f} s: was the task retried?"


def test_a_dag_returned_twice_runs_once(outcomes):
    (outcome,) = outcomes["attached_later.py"]
    assert outcome.ok, outcome.explain()
    assert outcome.tasks == {"first": "success", "second": "success"}


def test_the_gate_summary_shows_the_exception(scratch_dags, tmp_path):
    """`nox -s test` runs this pytest: its one-line failure summary carries the task's exception."""
    (scratch_dags.parent / "only").mkdir(exist_ok=True)
    only = scratch_dags.parent / "only" / "dags"
    only.mkdir(exist_ok=True)
    (only / "fails.py").write_text((scratch_dags / "fails.py").read_text())
    result = proc.run(
        [sys.executable, "-m", "pytest", "tests/dags/test_dag_runs.py", "-q", "-n", "0", "-p", "no:cacheprovider",
         "--no-header", "-rf", "-k", "test_dag_runs_to_success"],
        env={"AIRSTACK_DAGS_FOLDER": str(only), "PYTHONPATH": os.getcwd()},
        cwd=paths.repo_root(), check=False, timeout=600,
    )
    summary = result.stdout.split("DAG runs that failed", 1)[-1].splitlines()
    assert result.returncode == 1, result.stdout[-3000:]
    assert "fails (dags/fails.py): task 'validate' failed: ValueError: expected 4 rows, got 3" in summary, \
        result.stdout[-3000:]
