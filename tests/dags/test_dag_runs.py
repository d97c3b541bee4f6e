"""Every DAG runs to success with dag.test() on the Postgres metadata DB (skips listed in pyproject.toml).

The runs happen in workers forked from the test process (the ``dag_runs`` fixture,
airstack.dagtools.runs); a failure names the task, its exception and the last lines of its log.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airstack import paths
from tests.dags.conftest import dag_file_params

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("plugins/",)
AFFECTED_BY_DAGS = True  # and any affected DAG

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("dag_file", dag_file_params(paths.dags_folder()))
def test_dag_runs_to_success(dag_file, dag_runs):
    if dag_file is None:
        pytest.fail(f"no DAG files found in {paths.dags_folder()}", pytrace=False)
    outcomes = dag_runs.outcomes(dag_file)
    assert outcomes, f"{dag_file} defines no DAG"
    if all(o.skip for o in outcomes):
        pytest.skip("; ".join(f"{o.dag_id}: {o.skip}" for o in outcomes))
    failed = [o for o in outcomes if not o.ok]
    if failed:
        pytest.fail("\n\n".join(o.explain() for o in failed), pytrace=False)


@pytest.mark.dag_file("dags/etl_postgres.py")
def test_etl_wrote_the_warehouse(dag_runs, airflow_settings):
    """The ETL's effect, read back independently of the DAG's own check task: the landed file in
    storage (a local folder here; tests/integration/test_storage.py runs it on the S3 stand-in)."""
    from airstack.postgres.sql import connect

    assert "AIRSTACK_STORAGE_BASE" not in os.environ  # so storage is the default folder in AIRFLOW_HOME
    (outcome,) = dag_runs.outcomes(paths.dags_folder() / "etl_postgres.py")
    if outcome.skip:  # not run: its integrity test fails (or the team skips it), and says why
        pytest.skip(outcome.skip)
    assert outcome.ok, outcome.explain()
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
