"""What a change affects (airstack.affected): the rules on a small synthetic tree, git, and pytest's selection."""

from __future__ import annotations

import sys

import pytest

from airstack import paths, proc
from airstack.affected import changed_files, compute, images_affected

SOURCES = {
    "dags/a.py": "from common.kpo import project_pod\nproject_pod(project='alpha', image='etl-basic')\n",
    "dags/b.py": "from common.util import helper\n",
    "dags/c.py": "import pendulum\n",
    "dags/common/__init__.py": "",
    "dags/common/kpo.py": "from common import local_pods\n\ndef runner():\n    from airstack.localenv import pods\n",
    "dags/common/local_pods.py": "import json\n",
    "dags/common/util.py": "",
    "airstack/__init__.py": "",
    "airstack/proc.py": "",
    "airstack/settings/__init__.py": "",
    "airstack/settings/sops.py": "from airstack import proc\n",
    "airstack/errors.py": "",
    "airstack/localenv/__init__.py": "",
    "airstack/localenv/pods.py": "from airstack.errors import AirstackError\n",
    "tests/__init__.py": "",
    "tests/unit/test_sops.py": "from airstack.settings import sops\n",
    "tests/unit/test_other.py": "import json\n",
}


def test_a_dag_file_affects_only_that_dag():
    affected = compute(["dags/c.py"], SOURCES)
    assert not affected.everything and affected.dag_files == {"dags/c.py"}
    assert "tests/dags/test_dag_runs.py" in affected.test_files
    assert "tests/unit/test_sops.py" not in affected.test_files


def test_common_affects_its_importers_transitively():
    assert compute(["dags/common/local_pods.py"], SOURCES).dag_files == {"dags/a.py"}  # via common.kpo
    assert compute(["dags/common/util.py"], SOURCES).dag_files == {"dags/b.py"}


def test_tooling_a_dag_helper_imports_affects_those_dags():
    """common.kpo imports the local pod runner (airstack.localenv.pods) inside a task: a change to it, or to
    what it imports, runs the pod DAGs' tests."""
    for changed in ("airstack/localenv/pods.py", "airstack/errors.py"):
        affected = compute([changed], SOURCES)
        assert affected.dag_files == {"dags/a.py"} and "tests/dags/test_kpo_local.py" in affected.test_files, changed
    assert compute(["airstack/proc.py"], SOURCES).dag_files == set()


def test_pod_scripts_and_images_affect_the_dags_that_use_them():
    assert compute(["dags/tasks/alpha/transform.py"], SOURCES).dag_files == {"dags/a.py"}
    affected = compute(["images/etl-basic/requirements.txt"], SOURCES)
    assert affected.images == {"etl-basic"} and affected.dag_files == {"dags/a.py"}
    assert "tests/docker/test_images.py" in affected.test_files
    assert "tests/dags/test_settings_parity.py" in affected.test_files  # the gate's only parity check


def test_settings_affect_parity_render_and_for_local_every_dag_run():
    integration = compute(["settings/integration/secret.yaml"], SOURCES)
    assert integration.environments == {"integration"} and integration.dag_files == set()
    assert {"tests/dags/test_settings_parity.py", "tests/unit/test_settings_plan_render.py"} <= integration.test_files
    assert compute(["settings/local/secret.yaml"], SOURCES).dag_files == {"dags/a.py", "dags/b.py", "dags/c.py"}


def test_package_modules_affect_the_tests_that_import_them():
    affected = compute(["airstack/proc.py"], SOURCES)
    assert "tests/unit/test_sops.py" in affected.test_files  # through airstack.settings.sops
    assert "tests/unit/test_other.py" not in affected.test_files
    assert compute(["tests/unit/test_other.py"], SOURCES).test_files == {"tests/unit/test_other.py"}


@pytest.mark.parametrize("path", ["requirements/runtime.txt", "pyproject.toml", "noxfile.py", "tests/conftest.py"])
def test_what_everything_depends_on(path):
    affected = compute([path], SOURCES)
    assert affected.everything and affected.runs_dag("dags/c.py") and affected.runs_test_file("tests/x.py")


def test_images_affected_follow_each_context():
    from airstack.images.spec import discover

    root = paths.repo_root()
    specs = discover(root / "images")
    assert images_affected(["images/etl-basic/requirements.txt"], specs, root) == ["etl-basic"]
    # The runtime image bakes the lock and the plugins (images/airflow/image.yaml include), not the DAGs:
    # they ship in the DAG bundle, so a DAG change rebuilds no image.
    assert "airflow" in images_affected(["requirements/runtime.txt"], specs, root)
    assert "airflow" in images_affected(["plugins/README.md"], specs, root)
    assert images_affected(["dags/etl_postgres.py", "dags/tasks/example1/extract.py"], specs, root) == []
    assert images_affected(["README.md"], specs, root) == []


def _git(root, *args):
    return proc.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=root).stdout


@pytest.fixture()
def scratch_git(tmp_path):
    root = paths.scratch_copy(tmp_path / "repo", ("dags", "tests", "images", "requirements", "settings", "plugins"),
                              ("pyproject.toml", ".sops.yaml"))
    _git(root, "init", "--quiet", "--initial-branch=main")
    _git(root, "add", "-A")
    _git(root, "commit", "--quiet", "-m", "base")
    _git(root, "checkout", "--quiet", "-b", "feature")
    return root


def test_changed_files_sees_commits_edits_and_new_files(scratch_git):
    (scratch_git / "dags" / "etl_postgres.py").write_text("# edited\n")
    _git(scratch_git, "commit", "--quiet", "-am", "edit")
    (scratch_git / "dags" / "example_bash_operator.py").write_text("# uncommitted\n")
    (scratch_git / "dags" / "new.py").write_text("# untracked\n")
    expected = ["dags/etl_postgres.py", "dags/example_bash_operator.py", "dags/new.py"]
    assert changed_files(scratch_git, "main") == expected


def test_pytest_selects_only_the_changed_dags_tests(scratch_git):
    """The plugin, for real: pytest in the scratch repository collects only etl_postgres's DAG tests."""
    dag = scratch_git / "dags" / "etl_postgres.py"
    dag.write_text(dag.read_text() + "\n# a change\n")
    result = proc.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider",
                       "--changed-since", "main", "tests/dags/test_dag_integrity.py", "tests/dags/test_dag_runs.py"],
                      cwd=scratch_git, env={"AIRSTACK_ROOT": str(scratch_git)}, check=False)
    selected = [line for line in result.stdout.splitlines() if "::" in line]
    assert result.returncode == 0, result.stdout + result.stderr
    per_dag = [line for line in selected if "[" in line]
    assert per_dag and all("[dags/etl_postgres.py]" in line for line in per_dag), selected
    assert "deselected" in result.stdout


def test_platform_runs_for_a_change(scratch_git, monkeypatch):
    """airstack.testrun: the platform session has nothing to run for a DAG change; a module of airstack/ runs
    its importers' tests in one process; the lock, everything."""
    from airstack.testrun import CHART_TESTS, PLATFORM_TESTS, SECURITY_TESTS, platform_plan

    monkeypatch.setenv("AIRSTACK_ROOT", str(scratch_git))
    full = ["--numprocesses=auto", "--dist=loadgroup", *PLATFORM_TESTS, f"--ignore={CHART_TESTS}",
            f"--ignore={SECURITY_TESTS}"]
    assert "tests/deploy" in PLATFORM_TESTS  # one environment, one run (issue 16)
    assert platform_plan(None) == full
    (scratch_git / "dags" / "etl_postgres.py").write_text("# changed\n")
    assert platform_plan("main") is None
    (scratch_git / "airstack").mkdir()
    (scratch_git / "airstack" / "proc.py").write_text("# changed\n")
    main = platform_plan("main")
    assert main is not None and "tests/unit/test_proc.py" in main
    assert not any(m.startswith("tests/dags/test_") for m in main)
    (scratch_git / "requirements" / "runtime.in").write_text("# changed\n")
    assert platform_plan("main") == full
