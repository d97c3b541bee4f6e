"""Checker test: Airflow's own example DAGs (from the installed wheel) give no structural findings.

The policy is permissive (any tag, no owner/retries/catchup requirement), so what remains are
the rules that hold for any DAG file. The true positives are listed with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airstack.dagtools.check import rules
from airstack.dagtools.check.parse import check_files, dag_files
from airstack.dagtools.check.policy import DagPolicy

STRUCTURAL = {rules.NO_DAGS, rules.DUPLICATE_DAG_ID, rules.DEPRECATED_IMPORT, rules.TEMPLATE,
              rules.PARSE_TIME_DYNAMIC, rules.IMPORT_ERROR, rules.SYNTAX_ERROR, rules.CYCLE}
NOW = "datetime.datetime.now()"
# (file, rule, start of the message)
TRUE_POSITIVES = [
    # TimeSensor(target_time=datetime.datetime.now(...)...) inside `with DAG(...)`: computed at every parse.
    *(("example_sensors.py", rules.PARSE_TIME_DYNAMIC, f"line {n}: {NOW}") for n in (66, 72, 77, 85)),
    # Param(f"{datetime.date.today()}...") in the DAG's params: the default changes every day.
    *(("example_params_ui_tutorial.py", rules.PARSE_TIME_DYNAMIC, f"line {n}: datetime.date.today()")
      for n in (89, 106)),
    # env={"FOO": "{{ params.foo }}"} with no param `foo`: it renders only when the run's conf (or
    # `airflow tasks test -t`) supplies foo, which is what the example demonstrates; a plain trigger fails.
    ("example_passing_params_via_test_command.py", rules.TEMPLATE,
     "DAG 'example_passing_params_via_test_command' task 'also_run_this' field 'env': "
     "'dict object' has no attribute 'foo'"),
]


@pytest.fixture(scope="module")
def example_folders() -> list[Path]:
    import airflow
    import airflow.providers.standard

    folders = [Path(airflow.__file__).parent / "example_dags",
               Path(airflow.providers.standard.__file__).parent / "example_dags"]
    return [f for f in folders if f.is_dir()]


def test_airflow_example_dags_have_no_structural_findings(example_folders, monkeypatch):
    assert len(example_folders) == 2
    # Their plugins (custom timetables, weight rules) live in example_dags/plugins, as Airflow loads them.
    monkeypatch.setenv("AIRFLOW__CORE__PLUGINS_FOLDER", str(example_folders[0] / "plugins"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "True")
    policy = DagPolicy.model_validate({"allowed-tags": ["any"], "forbidden-owners": [], "min-retries": 0,
                                       "require-explicit-catchup": False, "parse-time-budget": 60})
    policy = policy.model_copy(update={"deprecated_imports": _repo_deprecated_imports()})
    found = set()
    checked = 0
    for folder in example_folders:
        files = dag_files(folder)
        checked += len(files)
        for report in check_files(files, folder, policy, workers=2):
            assert report.dag_ids or report.violations, report.file
            found |= {(Path(v.file).name, v.rule, v.message) for v in report.violations if v.rule in STRUCTURAL}
    assert checked >= 60
    unexpected = {f for f in found if not any(f[:2] == tp[:2] and f[2].startswith(tp[2]) for tp in TRUE_POSITIVES)}
    assert not unexpected, "\n".join(f"{f}: [{r}] {m}" for f, r, m in sorted(unexpected))
    missed = [tp for tp in TRUE_POSITIVES if not any(f[:2] == tp[:2] and f[2].startswith(tp[2]) for f in found)]
    assert not missed, missed


def _repo_deprecated_imports() -> dict[str, str]:
    from airstack import paths
    from airstack.dagtools.check.policy import load_policy

    return load_policy(paths.pyproject()).deprecated_imports
