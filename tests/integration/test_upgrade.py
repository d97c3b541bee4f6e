"""`nox -s upgrade` on a real move, in scratch copies of the repository: the standard provider 1.21.0 (the
lock's, with Airflow 3.3.2) down to 1.18.0, a release on the package index.

Real throughout: uv resolves requirements/runtime.in against the package index this machine reaches,
the candidate is installed into a throwaway venv, and the gate's DAG lane (integrity, policy,
templates, dag.test() on Postgres) runs once with the current lock and once with the candidate.
A scratch DAG gives TimeDeltaSensor a ``delta`` in minutes (an int), which the standard provider
accepts since 1.19: it must run on the lock and fail on 1.18.0. Each rehearsal takes minutes, so
there are two: one that finds the regression (and so applies nothing), and one ``--apply`` on one DAG.

A third rehearsal cannot start its Postgres (issue 23): it is `incomplete`, never "no regressions". The
DAG-run harness on Airflow 3.2 is checked by tests/integration/test_airflow_contract.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from airstack import paths, proc

MOVE = ("--provider", "standard==1.18.0")
REPORT = "apache-airflow-providers-standard-1.18.0"
SCRATCH_DAG = '''"""TimeDeltaSensor with a delta in minutes (an int): the standard provider takes one since 1.19."""

import pendulum
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG

from common.defaults import DEFAULT_ARGS

with DAG(dag_id="waits_minutes", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         catchup=False, tags=["example"], default_args=DEFAULT_ARGS):
    TimeDeltaSensor(task_id="wait", delta=0, mode="poke", poke_interval=1, timeout=60)
'''
COPIED = ("airstack", "dags", "plugins", "tests", "settings", "requirements", "charts", "images", "infra")
FILES = ("pyproject.toml", ".sops.yaml", ".flake8")


def _uv() -> str:
    return shutil.which("uv") or pytest.skip("uv is not on PATH")


def scratch_repo(dest: Path, dag_files: tuple[str, ...] | None = None) -> Path:
    root = paths.scratch_copy(dest, COPIED, FILES)
    if dag_files is not None:  # keep only these DAG files (and the shared code they import)
        for file in (root / "dags").glob("*.py"):
            if file.name not in dag_files:
                file.unlink()
    return root


def upgrade(root: Path, *args: str, env: dict[str, str] | None = None) -> proc.Result:
    env = {"AIRSTACK_ROOT": str(root), **(env or {})}
    return proc.run([sys.executable, "-m", "airstack.upgrade", "--uv", _uv(), *args], cwd=root, env=env,
                    check=False, timeout=2400)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file of the scratch repository but the reports and caches, by content."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file() and not p.relative_to(root).as_posix().startswith((".airstack/", ".pytest_cache/"))
            and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def upgrade_rehearsal(tmp_path_factory):
    """One rehearsal for the tests that read it (tests/conftest.py keeps them on one xdist worker)."""
    root = scratch_repo(tmp_path_factory.mktemp("upgrade-repo"))
    (root / "dags" / "waits_minutes.py").write_text(SCRATCH_DAG)
    before = tree_digest(root)
    result = upgrade(root, *MOVE, "--json", "--apply")
    return root, result, json.loads(result.stdout), before


def test_the_package_diff_is_the_real_move(upgrade_rehearsal):
    _, result, report, _ = upgrade_rehearsal
    assert report["moves"] == [{"package": "apache-airflow-providers-standard", "current": "1.21.0",
                                "target": "1.18.0"}]
    assert report["packages"] == {"added": [], "removed": [], "up": [], "down": [
        {"name": "apache-airflow-providers-standard", "before": "1.21.0", "after": "1.18.0"}]}


def test_the_scratch_dag_runs_on_the_lock_and_fails_on_the_target(upgrade_rehearsal):
    _, result, report, _ = upgrade_rehearsal
    before, after = report["dags"]["before"]["files"], report["dags"]["after"]["files"]
    dag = "dags/waits_minutes.py"
    assert before[dag] == {"integrity": {"status": "ok", "message": ""}, "run": {"status": "ok", "message": ""}}
    assert after[dag]["integrity"] == {"status": "ok", "message": ""}
    assert after[dag]["run"]["status"] == "failed"
    assert "task 'wait' failed: TypeError" in after[dag]["run"]["message"], after[dag]
    assert [(r["file"], r["check"]) for r in report["dags"]["regressions"]] == [(dag, "run")]
    assert result.returncode == 1 and report["ok"] is False


def test_the_repositorys_dags_run_on_both(upgrade_rehearsal):
    _, _, report, _ = upgrade_rehearsal
    for lane in ("before", "after"):
        files = report["dags"][lane]["files"]
        assert report["dags"][lane]["error"] == ""
        for dag in ("dags/etl_postgres.py", "dags/example_bash_operator.py"):
            assert files[dag] == {"integrity": {"status": "ok", "message": ""},
                                  "run": {"status": "ok", "message": ""}}, (lane, dag)
        for dag in ("dags/k8s_project_example.py", "dags/papermill_example.py"):  # pyproject's run skips
            assert files[dag]["integrity"]["status"] == "ok" and files[dag]["run"]["status"] == "skipped"


def test_config_lint_ran_on_each_deployed_environment(upgrade_rehearsal):
    _, _, report, _ = upgrade_rehearsal
    assert set(report["config_lint"]) == {"integration", "production"}
    for findings in report["config_lint"].values():  # the target's Airflow started with each configuration
        assert not any(f.startswith("Airflow does not start") for f in findings), findings
    assert report["ruff"] == []


def test_a_regression_applies_nothing_and_the_report_is_written(upgrade_rehearsal):
    root, result, report, before = upgrade_rehearsal
    assert report["applied"] == [] and tree_digest(root) == before
    assert "not applied: the verdict is failed: 1 regression(s)" in result.stderr
    markdown = (root / ".airstack" / "upgrade" / f"{REPORT}.md").read_text()
    assert "| apache-airflow-providers-standard | down | 1.21.0 | 1.18.0 |" in markdown
    assert "| dags/waits_minutes.py | dag.test() on Postgres | ok | failed | Failed: waits_minutes" in markdown
    saved = json.loads((root / ".airstack" / "upgrade" / f"{REPORT}.json").read_text())
    assert saved["packages"] == report["packages"]


def _runtime_tag(root: Path) -> str:
    from airstack.images.context import content_tag, context_entries
    from airstack.images.spec import load_spec

    spec = load_spec(root / "images" / "airflow")
    return content_tag(context_entries(spec, root), {}, "the-same-base")


def test_apply_writes_the_pin_and_the_locks_only_and_moves_the_image_tag(tmp_path):
    root = scratch_repo(tmp_path / "repo", dag_files=("example_bash_operator.py",))
    before, tag = tree_digest(root), _runtime_tag(root)
    result = upgrade(root, *MOVE, "--apply")
    assert result.returncode == 0, result.stderr[-3000:]
    changed = {path for path, digest in tree_digest(root).items() if before.get(path) != digest}
    assert changed == {"requirements/runtime.in", "requirements/runtime.txt", "requirements/dev.txt"}
    assert (root / "requirements" / "runtime.in").read_text().endswith("\napache-airflow-providers-standard==1.18.0\n")
    for lock in ("runtime.txt", "dev.txt"):
        assert "\napache-airflow-providers-standard==1.18.0 \\\n" in (root / "requirements" / lock).read_text()
    assert _runtime_tag(root) != tag
    assert "applied: requirements/runtime.in, requirements/runtime.txt, requirements/dev.txt" in result.stderr


@pytest.mark.parametrize("args, line", [
    (("99.0.0",), "error: apache-airflow==99.0.0 does not resolve with requirements/runtime.in and the overrides: "
                  "Because there is no version of apache-airflow[standard]==99.0.0"),
    (("--provider", "postgres"), "error: --provider 'postgres': expected NAME==VERSION"),
    (("3.3.1", "--bogus"), "error: unrecognized arguments: --bogus"),
])
def test_unresolvable_targets_and_bad_arguments_are_one_line(tmp_path, args, line):
    root = scratch_repo(tmp_path / "repo", dag_files=())
    before = tree_digest(root)
    result = upgrade(root, *args)
    assert result.returncode == 1
    lines = [text for text in result.stderr.splitlines() if not text.startswith("✓")]
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert tree_digest(root) == before and not (root / ".airstack").exists()


# A registry under .invalid never resolves: the daemon answers, and cannot get the image (issue 23's laptop
# behind a proxy, made deterministic); the container provider is asked for explicitly, so nothing falls back.
NO_POSTGRES = {"AIRSTACK_TEST_POSTGRES": "container", "AIRSTACK_POSTGRES_IMAGE": "airstack.invalid/postgres:15"}


def test_a_rehearsal_whose_postgres_cannot_start_is_incomplete_not_no_regressions(tmp_path):
    root = scratch_repo(tmp_path / "repo", dag_files=("example_bash_operator.py",))
    before = tree_digest(root)
    result = upgrade(root, *MOVE, "--json", "--apply", env=NO_POSTGRES)
    report = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr[-3000:]
    assert (report["verdict"], report["ok"], report["dags"]["regressions"]) == ("incomplete", False, [])
    for side in ("before", "after"):
        # The explicit request stops each lane's pytest before any test, in one line (pytest exit 4): the lane as a
        # whole could not run, and says why; no DAG check counts as passed, failed or "no change".
        lane = report["dags"][side]
        assert lane["error"].startswith("pytest exit 4: ") and "airstack.invalid/postgres:15" in lane["error"], lane
        assert not any(c["status"] in ("ok", "failed") for checks in lane["files"].values() for c in checks.values())
        counts = report["counts"][side]
        assert counts["could_not_run"] >= 1 and counts["passed"] == counts["failed"] == 0, counts
    assert "no regressions" not in result.stderr and "Could not run" in result.stderr
    assert "incomplete" in result.stderr.split("verdict", 1)[1].splitlines()[0]
    refused = [line for line in result.stderr.splitlines() if line.startswith("not applied")]
    assert refused == [f"not applied: the verdict is incomplete: {report['counts']['checks']['could_not_run']} "
                       "check(s) could not run"], result.stderr
    assert report["applied"] == [] and tree_digest(root) == before
    markdown = (root / ".airstack" / "upgrade" / f"{REPORT}.md").read_text()
    assert "**Verdict: incomplete**" in markdown and "## Could not run" in markdown
