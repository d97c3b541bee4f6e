"""The contract of airstack.airflow_compat with the Airflow installed here: each internal it uses on this release
is there and behaves as the harness needs. tests/integration/test_airflow_contract.py runs this file (and
test_dag_run_failures.py, the harness end to end) on every release airstack.airflow_compat.RELEASES lists.
"""

from __future__ import annotations

from pathlib import Path

from airstack import airflow_compat
from airstack.dagtools import runs


def test_this_airflow_is_a_release_the_harness_has_a_contract_with():
    seam = airflow_compat.current()
    assert seam.release in airflow_compat.RELEASES, (
        f"Airflow {seam.airflow}: the DAG-run harness has no contract with this release, so it runs plain "
        "dag.test() with reduced detail: add it to airstack/airflow_compat.py's RELEASES once this file passes")
    assert not seam.reduced


def test_the_internals_it_uses_are_there():
    from airflow.sdk.definitions import dag as sdk_dag
    from airflow.sdk.execution_time import supervisor

    seam = airflow_compat.current()
    if seam.hook:  # dag.test() looks the runner up in the supervisor module on each task, so a swap takes
        assert callable(supervisor.run_task_in_process)
        assert "from airflow.sdk.execution_time.supervisor import run_task_in_process" in Path(
            sdk_dag.__file__).read_text()
    if seam.warm:  # one API per process (the warm one the workers inherit)
        assert hasattr(supervisor.in_process_api_server, "cache_info")
    if seam.one_api:  # an API per call here, which the seam makes one per process
        airflow_compat.prepare()
        assert supervisor.in_process_api_server() is supervisor.in_process_api_server()


def test_the_hook_sees_each_task_and_its_error_and_undoes(monkeypatch):
    from airflow.sdk.execution_time import supervisor

    seen = []

    class Result:
        error = ValueError("boom")

    monkeypatch.setattr(supervisor, "run_task_in_process", lambda ti, task, **_: Result())
    undo = airflow_compat.hook_tasks(lambda t: seen.append(("before", t)), lambda t, e: seen.append(("after", t, e)))
    assert undo is not None
    ti = type("TI", (), {"task_id": "t"})()
    assert supervisor.run_task_in_process(ti=ti, task=None) is not None
    assert seen == [("before", "t"), ("after", "t", Result.error)]
    undo()
    assert supervisor.run_task_in_process(ti=ti, task=None).error is Result.error and len(seen) == 2


def test_an_internal_that_is_gone_is_the_harness_s_failure_not_the_dag_s(monkeypatch, tmp_path):
    """As on a release that dropped it: the outcome could not run, and says why; the DAG is not blamed."""
    from airflow.sdk import DAG
    from airflow.sdk.execution_time import supervisor

    monkeypatch.delattr(supervisor, "run_task_in_process")
    with DAG("fine", schedule=None) as dag:
        pass
    outcome = runs.run_dag(dag, "dags/fine.py", tmp_path, tmp_path / "logs")
    assert not outcome.ok and outcome.state == "" and outcome.failures == []
    assert explain_first(outcome).startswith(
        f"could not run: harness: Airflow {airflow_compat.current().airflow} has no "
        "airflow.sdk.execution_time.supervisor.run_task_in_process, which the harness uses on this release")


def explain_first(outcome: runs.DagOutcome) -> str:
    return outcome.explain().splitlines()[0]
