"""Each rule catches what it should, names the file and the rule, and makes the test session fail."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from airstack import paths, proc
from airstack.dagtools.check import rules
from airstack.dagtools.check.parse import check_files, dag_files

HEADER = """\
import pendulum
from airflow.sdk import DAG, BaseHook, Variable, dag, task
from airflow.providers.standard.operators.empty import EmptyOperator
"""
GOOD_ARGS = ('schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["example"], '
             'default_args={"owner": "team", "retries": 1}')

BROKEN = {
    "syntax_error.py": (rules.SYNTAX_ERROR, "from airflow.sdk import DAG\nwith DAG('x', catchup=False:\n    pass\n"),
    "cycle.py": (rules.CYCLE, HEADER + f"""
with DAG("cycle", {GOOD_ARGS}):
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    a >> b >> a
"""),
    "top_level_variable.py": (rules.PARSE_TIME_VARIABLE, HEADER + f"""
threshold = Variable.get("threshold", default="1")
with DAG("top_level_variable", {GOOD_ARGS}):
    EmptyOperator(task_id="a")
"""),
    "missing_owner.py": (rules.OWNER, HEADER + """
with DAG("missing_owner", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
         tags=["example"], default_args={"retries": 1}):
    EmptyOperator(task_id="a")
"""),
    "top_level_connection.py": (rules.PARSE_TIME_CONNECTION, HEADER + f"""
host = BaseHook.get_connection("warehouse_db").host
with DAG("top_level_connection", {GOOD_ARGS}):
    EmptyOperator(task_id="a")
"""),
    "db_query.py": (rules.PARSE_TIME_DB, HEADER + f"""
from sqlalchemy import text
from airflow import settings
with settings.Session() as session:
    session.execute(text("SELECT 1"))
with DAG("db_query", {GOOD_ARGS}):
    EmptyOperator(task_id="a")
"""),
    "airflow2_import.py": (rules.DEPRECATED_IMPORT, HEADER + f"""
from airflow.operators.bash import BashOperator
with DAG("airflow2_import", {GOOD_ARGS}):
    EmptyOperator(task_id="a")
"""),
    "implicit_catchup.py": (rules.CATCHUP, HEADER + """
@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=["example"],
     default_args={"owner": "team", "retries": 1})
def implicit_catchup():
    @task
    def a():
        return 1
    a()
implicit_catchup()
"""),
    "unknown_tag.py": (rules.TAGS, HEADER + """
with DAG("unknown_tag", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
         tags=["not-a-team-tag"], default_args={"owner": "team", "retries": 1}):
    EmptyOperator(task_id="a")
"""),
    "no_retries.py": (rules.RETRIES, HEADER + """
with DAG("no_retries", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
         tags=["example"], default_args={"owner": "team"}):
    EmptyOperator(task_id="a", retries=0)
"""),
    # Mentions Airflow and DAGs, so Airflow parses it (safe mode), yet defines none.
    "helper_not_a_dag.py": (rules.NO_DAGS, "# Helpers for our Airflow DAGs.\ndef helper():\n    return 1\n"),
    "airflow2_models_import.py": (rules.DEPRECATED_IMPORT, HEADER + f"""
from airflow.models import DAG as ModelsDAG
with ModelsDAG("airflow2_models_import", {GOOD_ARGS}):
    EmptyOperator(task_id="a")
"""),
    "dynamic_start_date.py": (rules.PARSE_TIME_DYNAMIC, HEADER + """
from datetime import datetime
with DAG("dynamic_start_date", schedule=None, start_date=datetime.now(), catchup=False, tags=["example"],
         default_args={"owner": "team", "retries": 1}):
    EmptyOperator(task_id="a")
"""),
    "template_typo.py": (rules.TEMPLATE, HEADER + f"""
from airflow.providers.standard.operators.bash import BashOperator
with DAG("template_typo", {GOOD_ARGS}):
    BashOperator(task_id="t", bash_command="echo {{{{ ds_nodashh }}}}")
"""),
}
# The four the issue names, checked end to end through pytest in a subprocess.
END_TO_END = ["syntax_error.py", "cycle.py", "top_level_variable.py", "missing_owner.py"]


def _write(folder: Path, names) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(textwrap.dedent(BROKEN[name][1]))
    return folder


@pytest.fixture(scope="module")
def broken_reports(tmp_path_factory, dag_policy):
    folder = _write(tmp_path_factory.mktemp("broken") / "dags", BROKEN)
    return {r.file.split("/")[-1]: r for r in check_files(dag_files(folder), folder, dag_policy)}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_rule_catches_its_case(name, broken_reports):
    rule = BROKEN[name][0]
    report = broken_reports[name]
    found = [v for v in report.violations if v.rule == rule]
    assert found, f"{name}: expected [{rule}], got {[str(v) for v in report.violations]}"
    assert str(found[0]).startswith(f"dags/{name}: [{rule}]")


def test_each_broken_file_breaks_only_its_rule(broken_reports):
    """No collateral findings: every file is otherwise well-formed."""
    for name, (rule, _) in BROKEN.items():
        assert {v.rule for v in broken_reports[name].violations} == {rule}, name


def test_parse_time_access_names_the_line(broken_reports):
    (violation,) = broken_reports["top_level_variable.py"].violations
    assert "line 5" in violation.message and "'threshold'" in violation.message


def test_duplicate_dag_ids_across_files(tmp_path, dag_policy):
    folder = tmp_path / "dags"
    folder.mkdir()
    body = HEADER + f'\nwith DAG("same_id", {GOOD_ARGS}):\n    EmptyOperator(task_id="a")\n'
    (folder / "one.py").write_text(body)
    (folder / "two.py").write_text(body)
    reports = check_files(dag_files(folder), folder, dag_policy)
    assert [[v.rule for v in r.violations] for r in reports] == [[rules.DUPLICATE_DAG_ID]] * 2


def test_empty_dags_folder_fails_loudly(tmp_path):
    from tests.dags.conftest import NO_DAG_FILES, dag_file_params

    (params,) = dag_file_params(tmp_path)
    assert params.id == NO_DAG_FILES and params.values == (None,)


def test_broken_dags_fail_the_test_session(tmp_path):
    """`nox -s test` runs this same pytest: breaking a DAG fails it, naming file and rule."""
    folder = _write(tmp_path / "dags", END_TO_END)
    result = proc.run(
        [sys.executable, "-m", "pytest", "tests/dags/test_dag_integrity.py", "-q", "-p", "no:cacheprovider",
         "--no-header", "-rN"],
        env={"AIRSTACK_DAGS_FOLDER": str(folder), "AIRSTACK_TEST_POSTGRES_DSN": "", "PYTHONPATH": os.getcwd()},
        cwd=paths.repo_root(), check=False, timeout=300,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    for name in END_TO_END:
        assert f"dags/{name}: [{BROKEN[name][0]}]" in result.stdout, (name, result.stdout[-3000:])
    assert f"{len(END_TO_END)} failed" in result.stdout
