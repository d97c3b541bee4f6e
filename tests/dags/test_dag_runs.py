"""Every DAG runs to success with dag.test() on the Postgres metadata DB (skips listed in pyproject.toml)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airstack import paths
from airstack.dagcheck.parse import parse_file
from airstack.dagcheck.policy import load_run_policy
from tests.dags.conftest import dag_file_params

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def run_dag_file(airflow_settings):
    """Run every DAG of a file once per session with dag.test(); return [(dag, skip reason, outcome)]."""
    skips = load_run_policy(paths.pyproject()).skip
    cache: dict = {}

    def run(dag_file):
        if dag_file not in cache:
            results = []
            for dag in parse_file(dag_file, paths.dags_folder()):
                if dag.dag_id in skips:
                    results.append((dag, skips[dag.dag_id], None))
                    continue
                run = dag.test()
                results.append((dag, None, (run.state, {ti.task_id: ti.state for ti in run.get_task_instances()})))
            cache[dag_file] = results
        return cache[dag_file]

    return run


@pytest.mark.parametrize("dag_file", dag_file_params(paths.dags_folder()))
def test_dag_runs_to_success(dag_file, run_dag_file):
    if dag_file is None:
        pytest.fail(f"no DAG files found in {paths.dags_folder()}", pytrace=False)
    results = run_dag_file(dag_file)
    assert results, f"{dag_file} defines no DAG"
    if all(skip for _, skip, _ in results):
        pytest.skip("; ".join(f"{dag.dag_id}: {skip}" for dag, skip, _ in results))
    for dag, skip, outcome in results:
        if skip:
            continue
        state, tasks = outcome
        failed = {task: s for task, s in tasks.items() if s != "success"}
        assert state == "success" and not failed, f"{dag.dag_id}: run {state}; tasks not successful: {failed}"
        assert set(tasks) == set(dag.task_ids), f"{dag.dag_id}: tasks that never ran: {set(dag.task_ids) - set(tasks)}"


@pytest.mark.dag_file("dags/etl_postgres.py")
def test_etl_wrote_the_warehouse(run_dag_file, airflow_settings):
    """The ETL's effect, read back independently of the DAG's own check task: the landed file in
    storage (a local folder here; tests/integration/test_storage.py runs it on the S3 stand-in)."""
    from airstack.postgres.sql import connect

    assert "AIRSTACK_STORAGE_BASE" not in os.environ  # so storage is the default folder in AIRFLOW_HOME
    run_dag_file(paths.dags_folder() / "etl_postgres.py")
    landed = list((Path(os.environ["AIRFLOW_HOME"]) / "storage" / "etl" / "orders").glob("*.csv"))
    assert len(landed) == 1 and len(landed[0].read_text().splitlines()) == 1 + 6, landed
    conn = connect(airflow_settings["warehouse_dsn"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT customer, total, orders FROM customer_totals ORDER BY customer")
            rows = [(c, float(t), n) for c, t, n in cur.fetchall()]
    finally:
        conn.close()
    # etl_min_order_amount is 10, which leaves out initech's 5.25 order.
    assert rows == [("acme", 177.5, 3), ("globex", 349.99, 2)]
