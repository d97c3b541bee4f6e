"""Every DAG file imports, has no cycle, follows the policy in pyproject.toml and does nothing at parse time."""

from __future__ import annotations

import pytest

from airstack import paths
from tests.dags.conftest import dag_file_params

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("plugins/",)
AFFECTED_BY_DAGS = True  # and any affected DAG


@pytest.mark.parametrize("dag_file", dag_file_params(paths.dags_folder()))
def test_dag_file(dag_file, integrity_reports, dag_policy, record_property):
    if dag_file is None:
        pytest.fail(f"no DAG files found in {paths.dags_folder()}: a repository without DAGs is a mistake",
                    pytrace=False)
    report = integrity_reports[str(dag_file.resolve())]
    # Listed in the "DAG parse times" section at the end of the run (tests/conftest.py).
    record_property("dag_parse", {"file": report.file, "seconds": report.parse_seconds, "tasks": report.tasks,
                                  "sql": report.sql_statements, "budget": dag_policy.parse_time_budget})
    if report.violations:
        consequence = ([] if report.imported else
                       ["(until it imports, the other DAG tests leave this file out, and its DAGs do not run)"])
        if report.unrunnable:
            consequence.append(f"(not run until this is fixed: {', '.join(report.unrunnable)})")
        pytest.fail("\n".join([*(str(v) for v in report.violations), *consequence]), pytrace=False)
    assert report.dag_ids, f"{report.file} defines no DAG"
