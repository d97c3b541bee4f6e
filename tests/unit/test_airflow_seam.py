"""airstack.airflow_compat's pure part: which Airflow internals the DAG-run harness uses on which release."""

from __future__ import annotations

from airstack import airflow_compat
from airstack.dagtools.runs import DagOutcome, explain


def test_each_supported_release_has_its_internals_and_a_version_its_contract_installs():
    assert airflow_compat.for_version("3.3.2").uses == {"warm", "hook"}
    assert airflow_compat.for_version("3.3.0rc1").uses == {"warm", "hook"}
    assert airflow_compat.for_version("3.2.2").uses == {"hook", "one_api"}
    assert set(airflow_compat.CONTRACT_VERSIONS) == set(airflow_compat.RELEASES)
    for release, version in airflow_compat.CONTRACT_VERSIONS.items():
        assert airflow_compat.for_version(version).release == release
    assert all(not airflow_compat.for_version(v).reduced for v in airflow_compat.CONTRACT_VERSIONS.values())


def test_another_release_runs_plain_dag_test_and_says_the_detail_is_reduced():
    seam = airflow_compat.for_version("3.4.0")
    assert not (seam.warm or seam.hook or seam.one_api)
    assert seam.reduced == ("per-task detail reduced: the harness has no contract with Airflow 3.4.0 (it has with "
                            "3.2, 3.3), so it runs plain dag.test()")
    outcome = DagOutcome("etl", "dags/etl.py", state="failed", tasks={"a": "failed"}, expected_tasks=["a"],
                         reduced=seam.reduced)
    assert f"  ({seam.reduced})" in explain(outcome).splitlines()


def test_a_harness_failure_could_not_run_and_blames_no_dag():
    outcome = DagOutcome("etl", "dags/etl.py", harness="the worker running it failed: BrokenProcessPool")
    assert not outcome.ok
    assert explain(outcome) == ("could not run: harness: the worker running it failed: BrokenProcessPool "
                                "(etl, dags/etl.py)")
