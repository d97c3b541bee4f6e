"""`nox -s lint -- --changed-since REF`: which files each linter gets (airstack.lint.targets)."""

from airstack import paths
from airstack.lint import PYTHON_PATHS, targets

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
