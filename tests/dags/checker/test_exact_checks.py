"""The checker is exact: no false failures on good DAG files, no misses on bad ones (issue 13, part 3)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from airstack import paths, proc
from airstack.dagtools.check import rules
from airstack.dagtools.check.parse import check_files, dag_files, parse_file

HEADER = """\
import pendulum
from airflow.sdk import DAG, dag, task
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
"""
GOOD_ARGS = ('schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["example"], '
             'default_args={"owner": "team", "retries": 1}')


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "dags"
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(body))
    return folder


def _check(tmp_path: Path, policy, files: dict[str, str]) -> dict:
    """Reports by file name, for every file given (listed by dag_files or not)."""
    folder = _folder(tmp_path, files)
    return {Path(r.file).name: r for r in check_files([folder / n for n in files], folder, policy)}


def _texts(report) -> list[str]:
    return [str(v) for v in report.violations]


# ----------------------------------------------------------------- 1. each DAG counted once --
DAG_EQUALS_DAG = HEADER + f"""
with DAG("attached_later", {GOOD_ARGS}) as the_dag:
    EmptyOperator(task_id="a")
EmptyOperator(task_id="b", dag=the_dag)
"""


def test_a_task_attached_with_dag_equals_dag_counts_the_dag_once(tmp_path, dag_policy):
    report = _check(tmp_path, dag_policy, {"attached.py": DAG_EQUALS_DAG})["attached.py"]
    assert report.violations == [] and report.dag_ids == ["attached_later"] and report.tasks == 2


def test_parse_file_returns_the_dag_once(tmp_path):
    folder = _folder(tmp_path, {"attached.py": DAG_EQUALS_DAG})
    assert [d.dag_id for d in parse_file(folder / "attached.py", folder)] == ["attached_later"]


def test_two_dags_with_one_id_in_one_file_are_a_duplicate(tmp_path, dag_policy):
    body = HEADER + f"""
with DAG("same", {GOOD_ARGS}):
    EmptyOperator(task_id="a")
with DAG("same", {GOOD_ARGS}):
    EmptyOperator(task_id="b")
"""
    report = _check(tmp_path, dag_policy, {"twice.py": body})["twice.py"]
    assert _texts(report) == ["dags/twice.py: [duplicate-dag-id] DAG id 'same' is defined 2 times in this file and "
                              "Airflow keeps only the last; give each DAG its own dag_id"]


# ------------------------------------------------------------------ 2. what is a DAG file --
NOT_DAG_FILES = {
    "__init__.py": "",
    "helpers.py": "def double(x):\n    return 2 * x\n",
    "plugins/my_plugin.py": "from airflow.plugins_manager import AirflowPlugin\n\n\n"
                            "class MyPlugin(AirflowPlugin):\n    name = 'my_plugin'  # for DAGs\n",
}


def test_files_airflow_would_not_parse_as_dags_are_not_listed_nor_failed(tmp_path, dag_policy, monkeypatch):
    files = {**NOT_DAG_FILES, "real.py": HEADER + f'with DAG("real", {GOOD_ARGS}):\n    EmptyOperator(task_id="a")\n'}
    folder = _folder(tmp_path, files)
    monkeypatch.setenv("AIRFLOW__CORE__PLUGINS_FOLDER", str(folder / "plugins"))
    assert dag_files(folder) == [folder / "real.py"]
    reports = check_files([folder / n for n in NOT_DAG_FILES], folder, dag_policy)
    assert [_texts(r) for r in reports] == [[], [], []]


@pytest.mark.parametrize(("body", "advice"), [
    ("# A helper for our Airflow DAGs\nTEAM = 'data'\n",
     "it is a helper, not a DAG file: move it to dags/common/ (listed in .airflowignore) or add it to .airflowignore"),
    (HEADER + f"@dag({GOOD_ARGS})\ndef forgotten():\n    EmptyOperator(task_id='a')\n",
     "the @dag function `forgotten` is never called: call `forgotten()` at module level"),
    (HEADER + f"def build():\n    with DAG('built', {GOOD_ARGS}):\n        EmptyOperator(task_id='a')\n",
     "its DAG(...) is created inside `build()`, which is never called at module level: call it there"),
])
def test_a_file_that_mentions_dags_but_defines_none_fails_with_fitting_advice(tmp_path, dag_policy, body, advice):
    folder = _folder(tmp_path, {"empty.py": body})
    assert dag_files(folder) == [folder / "empty.py"]
    (report,) = check_files(dag_files(folder), folder, dag_policy)
    assert _texts(report) == [f"dags/empty.py: [no-dags] defines no DAG; {advice}"]


# ----------------------------------------------------------------------- 4. @asset DAGs --
def test_asset_dags_are_judged_by_what_the_decorator_accepts(tmp_path, dag_policy):
    body = """
    from airflow.sdk import asset, task


    @asset(schedule=None, tags=["example"])
    def plain():
        return 1


    @asset(schedule=None, tags=["example"])
    @task(owner="team", retries=1)
    def owned():
        return 1
    """
    report = _check(tmp_path, dag_policy, {"assets.py": body})["assets.py"]
    assert report.dag_ids == ["owned", "plain"]
    assert _texts(report) == [
        "dags/assets.py: [owner] DAG 'plain': tasks without an owner (stack @task(owner=...) under @asset): plain",
        "dags/assets.py: [retries] DAG 'plain': tasks with retries < 1: plain (stack @task(retries=...) under @asset)",
    ]


def test_an_asset_without_tags_is_told_to_tag_the_decorator(tmp_path, dag_policy):
    body = 'from airflow.sdk import asset, task\n\n\n@asset(schedule=None)\n@task(owner="team", retries=1)\n' \
           'def untagged():\n    return 1\n'
    report = _check(tmp_path, dag_policy, {"untagged.py": body})["untagged.py"]
    assert [v.rule for v in report.violations] == [rules.TAGS]
    assert "set @asset(tags=[...])" in report.violations[0].message


# ---------------------------------------------------------- 5. values that change per parse --
def test_values_that_change_on_every_parse_are_refused_with_their_line(tmp_path, dag_policy):
    body = HEADER + f"""
import random
import uuid
from datetime import datetime

RUN_KEY = uuid.uuid4()


@dag({GOOD_ARGS})
def dynamic():
    BashOperator(task_id="t", bash_command=f"echo {{random.randint(1, 9)}}")

    @task
    def at_task_time():
        return datetime.now().isoformat()  # runs in the task: fine

    at_task_time()


dynamic()
"""
    report = _check(tmp_path, dag_policy, {"dynamic.py": body})["dynamic.py"]
    assert [(v.rule, v.message.split(":")[0]) for v in report.violations] == [
        (rules.PARSE_TIME_DYNAMIC, "line 10"), (rules.PARSE_TIME_DYNAMIC, "line 15")]
    assert str(report.violations[0]).startswith(
        "dags/dynamic.py: [parse-time-dynamic-value] line 10: uuid.uuid4() changes on every parse")
    assert "use a fixed pendulum.datetime(...)" in report.violations[0].message


# ------------------------------------------------------------------ 6. templates rendered --
def test_a_template_typo_names_file_dag_task_and_field(tmp_path, dag_policy):
    body = HEADER + f'with DAG("d", {GOOD_ARGS}):\n' \
                    '    BashOperator(task_id="t", bash_command="echo {{ ds_nodashh }}")\n'
    report = _check(tmp_path, dag_policy, {"x.py": body})["x.py"]
    (text,) = _texts(report)
    assert text.startswith("dags/x.py: [template] DAG 'd' task 't' field 'bash_command': 'ds_nodashh' is undefined")


GOOD_TEMPLATES = HEADER + f"""
from pathlib import Path

SQL = str(Path(__file__).parent / "sql")
with DAG("templated", {GOOD_ARGS}, params={{"table": "orders"}}, template_searchpath=[SQL],
         user_defined_macros={{"team": "data"}}, user_defined_filters={{"shout": str.upper}}):
    BashOperator(
        task_id="all_of_it",
        bash_command="echo {{{{ ds }}}} {{{{ ds_nodash }}}} {{{{ ts }}}} {{{{ logical_date.year }}}} "
                     "{{{{ data_interval_start }}}} {{{{ data_interval_end }}}} {{{{ params.table }}}} "
                     "{{{{ params.limit }}}} {{{{ var.value.never_defined }}}} {{{{ var.json.cfg.key }}}} "
                     "{{{{ conn.warehouse_db.host }}}} {{{{ macros.ds_add(ds, 7) }}}} {{{{ run_id }}}} "
                     "{{{{ ti.xcom_pull(task_ids='x') }}}} {{{{ dag_run.conf.get('k', 1) }}}} {{{{ team | shout }}}} "
                     "{{{{ task.task_id }}}} {{{{ dag.dag_id }}}} {{{{ prev_start_date_success }}}} {{{{ outlets }}}}",
        env={{"DAY": "{{{{ ds }}}}", "LIST": "{{{{ params.table }}}}"}},
        params={{"limit": 10}},
    )
    BashOperator(task_id="from_file", bash_command="run.sh")
"""


def test_good_templates_render_without_a_database(tmp_path, dag_policy):
    folder = _folder(tmp_path, {"templated.py": GOOD_TEMPLATES, "sql/run.sh": "echo {{ ds }} {{ params.table }}\n"})
    (report,) = check_files([folder / "templated.py"], folder, dag_policy)
    assert _texts(report) == [] and report.sql_statements == 0


def test_a_template_file_is_rendered_through_the_environment(tmp_path, dag_policy):
    body = GOOD_TEMPLATES.replace('"run.sh"', '"missing.sh"')
    folder = _folder(tmp_path, {"templated.py": body, "sql/run.sh": "echo\n"})
    (report,) = check_files([folder / "templated.py"], folder, dag_policy)
    (text,) = _texts(report)
    assert text.startswith("dags/templated.py: [template] DAG 'templated' task 'from_file' field 'bash_command': "
                           "TemplateNotFound: 'missing.sh' not found in search path")


def test_a_typo_in_a_template_file_is_found(tmp_path, dag_policy):
    folder = _folder(tmp_path, {"templated.py": GOOD_TEMPLATES, "sql/run.sh": "echo {{ params.tabel }}\n"})
    (report,) = check_files([folder / "templated.py"], folder, dag_policy)
    (text,) = _texts(report)
    assert "task 'from_file' field 'bash_command': 'dict object' has no attribute 'tabel'" in text


# ------------------------------------------------------------- 7/8. check-dags and tracebacks --
BROKEN_IMPORT = "from airflow.sdk import DAG\nimport helper_that_is_missing\n"


def _check_dags(folder: Path, root: Path | None = None) -> proc.Result:
    env = {"PYTHONPATH": os.getcwd(), "COLUMNS": "80", **({"AIRSTACK_ROOT": str(root)} if root else {})}
    return proc.run([sys.executable, "-m", "airstack.dagtools.check", "--dags-folder", str(folder), "--json",
                     str(folder.parent / "report.json")], env=env, cwd=paths.repo_root(), check=False, timeout=300)


def test_check_dags_prints_whole_paths_and_json_carries_every_finding(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.airstack.dag-policy]\nallowed-tags = ["example"]\nparse-time-budget = 0.000001\n')
    long_name = "a_team_folder_with_a_rather_long_name/and_a_dag_file_whose_name_is_longer_than_the_terminal.py"
    folder = _folder(root, {long_name: HEADER + f'with DAG("long", {GOOD_ARGS}):\n    EmptyOperator(task_id="a")\n',
                            "broken.py": BROKEN_IMPORT})
    result = _check_dags(folder, root)
    assert result.returncode == 1
    assert f"dags/{long_name}" in result.stdout, result.stdout
    report = {r["file"]: r for r in json.loads((folder.parent / "report.json").read_text())}
    assert report[f"dags/{long_name}"]["over_budget"] is True and report[f"dags/{long_name}"]["ok"] is True
    (finding,) = report["dags/broken.py"]["violations"]
    assert finding["rule"] == rules.IMPORT_ERROR and finding["text"].startswith("dags/broken.py: [import-error]")


def test_an_import_error_is_one_traceback_from_the_dag_files_frame(tmp_path, dag_policy):
    folder = _folder(tmp_path, {"broken.py": BROKEN_IMPORT})
    (report,) = check_files([folder / "broken.py"], folder, dag_policy)
    (violation,) = report.violations
    lines = violation.message.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == f'  File "{folder / "broken.py"}", line 2, in <module>'
    assert lines[-1] == "ModuleNotFoundError: No module named 'helper_that_is_missing'"
    result = _check_dags(folder)
    assert (result.stdout + result.stderr).count("No module named 'helper_that_is_missing'") == 1, result.stderr


def test_the_integrity_test_shows_one_traceback(tmp_path):
    folder = _folder(tmp_path, {"broken.py": BROKEN_IMPORT})
    result = proc.run(
        [sys.executable, "-m", "pytest", "tests/dags/test_dag_integrity.py", "-q", "-p", "no:cacheprovider",
         "--no-header", "-rN"],
        env={"AIRSTACK_DAGS_FOLDER": str(folder), "AIRSTACK_TEST_POSTGRES_DSN": "", "PYTHONPATH": os.getcwd()},
        cwd=paths.repo_root(), check=False, timeout=300,
    )
    assert "1 failed" in result.stdout, result.stdout[-3000:]
    assert result.stdout.count("Traceback (most recent call last)") == 1, result.stdout[-3000:]
