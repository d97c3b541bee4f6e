"""`nox -s lint -- --changed-since REF`: which files each linter gets (airstack.gate.lint.targets)."""

from airstack import paths
from airstack.gate.lint import PYTHON_PATHS, targets

ROOT = paths.repo_root()


def test_everything_without_a_ref():
    python, yaml, cfn = targets(ROOT, None)
    assert python == [p for p in PYTHON_PATHS if (ROOT / p).exists()] and yaml == ["."] and cfn


def test_only_changed_files_that_still_exist():
    changed = ["dags/etl_postgres.py", "dags/removed.py", "settings/local/deploy.yaml", "README.md",
               "docs/not_linted.py"]
    python, yaml, cfn = targets(ROOT, changed)
    assert python == ["dags/etl_postgres.py"] and yaml == ["settings/local/deploy.yaml"] and not cfn


def test_cfn_lint_when_a_template_or_parameter_file_changed():
    assert targets(ROOT, ["infra/cloudformation/parameters/integration.yaml"])[2]
    assert not targets(ROOT, ["charts/platform/values.yaml"])[2]


def test_an_airflow_2_import_in_a_dag_fails_the_ruff_step(tmp_path, capsys):
    """Real ruff (the locked one) over a scratch DAG folder: file:line and the AIR3 code are shown."""
    from airstack.gate.lint import ruff_airflow

    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "old.py").write_text(
        "from airflow.operators.bash import BashOperator\n\nBashOperator(task_id='t', bash_command='true')\n")
    (tmp_path / "dags" / "new.py").write_text("from airflow.sdk import DAG\n\nDAG('d', schedule=None)\n")
    assert ruff_airflow(["dags"], tmp_path) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("dags/old.py:3:1: AIR312 `airflow.operators.bash.BashOperator`"), lines
    assert not any(line.startswith("dags/new.py") for line in lines)
    assert ruff_airflow(["dags/new.py"], tmp_path) == 0
