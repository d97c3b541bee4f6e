"""One mistake, one failure: the gate's DAG lane, run for real on a scratch DAG folder with one mistake in it.

The lane is the pytest that ``nox -s test`` runs (airstack.gate.testrun.gate_lanes' ``dags`` lane), over
a copy of the repository's DAGs (``AIRSTACK_DAGS_FOLDER``) with one mistake made in it. No Docker
daemon is named (the pod DAGs' tests skip, as on a machine without one), so the lane starts its own
Postgres from the binaries or the wheel. Outcomes are read from its JUnit XML. Each case fails on the
code before issue 23 (a broken import: 9 failures; a template typo: 2; a connection missing from two
environments: 2).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from airstack import paths, proc
from airstack.gate import testrun

INTEGRITY = "tests.dags.test_dag_integrity::test_dag_file"


def _scratch_dags(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """The repository's DAG folder, copied, with ``old`` replaced by ``new`` once in ``file``."""
    folder = tmp_path / "dags"
    shutil.copytree(paths.dags_folder(), folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    source = (folder / file).read_text()
    assert source.count(old) >= 1, f"{file} no longer has {old!r}: update this test"
    (folder / file).write_text(source.replace(old, new, 1))
    return folder


def _dag_lane(folder: Path, tmp_path: Path, **environ: str) -> tuple[dict[str, tuple[str, str]], str]:
    """Run the gate's DAG lane on ``folder``: ({class::test: (outcome, message)}, its output)."""
    junit = tmp_path / "lane.xml"
    options = ["-p", "no:cacheprovider", "-o", "junit_family=xunit1", f"--junitxml={junit}"]
    dags, _ = testrun.gate_lanes(argparse.Namespace(changed_since=None), options, tmp_path)
    assert dags.argv[:3] == [sys.executable, "-m", "pytest"]
    # Its own Postgres (binaries or the wheel): the lane names fixed databases, so no shared server.
    env = {"AIRSTACK_DAGS_FOLDER": str(folder), "AIRSTACK_TEST_POSTGRES": "", "AIRSTACK_TEST_POSTGRES_DSN": "",
           "DOCKER_HOST": "unix:///nonexistent/docker.sock", **environ}
    result = proc.run(dags.argv, env=env, cwd=paths.repo_root(), check=False, timeout=1200)
    assert junit.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        found = [c for c in case if c.tag in ("failure", "error", "skipped")]
        outcome, message = (found[0].tag, found[0].get("message", "")) if found else ("passed", "")
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = (outcome, message)
    return outcomes, result.stdout


def _summary(output: str) -> str:
    """pytest's last line, without its rule: ``1 failed, 20 passed, 5 skipped in 40.80s``."""
    return output.strip().splitlines()[-1].strip("= ")


def _not_passed(outcomes: dict) -> dict[str, str]:
    return {test: outcome for test, (outcome, _) in outcomes.items() if outcome in ("failure", "error")}


def test_a_broken_import_is_one_failure(tmp_path):
    """A DAG file whose import breaks fails its integrity test; its run, the tests of that DAG and the tests
    that walk every DAG (pod specs, parity) leave it out, saying why; the other files are still checked."""
    folder = _scratch_dags(tmp_path, "etl_postgres.py", "from common.storage import storage_root",
                           "from common.storage import storage_rot")
    outcomes, output = _dag_lane(folder, tmp_path)
    failing = f"{INTEGRITY}[dags/etl_postgres.py]"
    assert _not_passed(outcomes) == {failing: "failure"}, output[-6000:]
    assert "storage_rot" in outcomes[failing][1]
    reason = "fails to import: see test_dag_file[dags/etl_postgres.py]"
    for test in ("tests.dags.test_dag_runs::test_dag_runs_to_success[dags/etl_postgres.py]",
                 "tests.dags.test_dag_runs::test_etl_wrote_the_warehouse",
                 "tests.dags.test_etl_storage_s3::test_etl_lands_its_file_in_s3"):
        assert outcomes[test][0] == "skipped" and reason in outcomes[test][1], (test, outcomes[test])
    # The others were still checked: the other files' runs, pod specs and parity passed.
    for test in ("tests.dags.test_dag_runs::test_dag_runs_to_success[dags/example_bash_operator.py]",
                 "tests.dags.test_kpo_pod_spec::test_there_are_pod_tasks",
                 "tests.dags.test_kpo_pod_spec::test_pod_follows_project_conventions",
                 "tests.dags.test_settings_parity::test_every_environment_has_everything_the_dags_use"):
        assert outcomes[test][0] == "passed", (test, outcomes[test])
    assert [t for t in outcomes if "test_pod_requests_are_valid" in t and outcomes[t][0] == "passed"]
    assert "DAG runs that failed" not in output, output[-3000:]  # the file was not run (nor the repo's copy)
    # The tests that walk every DAG say what they left out, once.
    assert f"dags/etl_postgres.py {reason}; left out of: " in output, output[-3000:]
    assert _summary(output).startswith("1 failed, "), output[-3000:]


def test_a_template_typo_is_one_failure(tmp_path):
    """A DAG whose templates do not render fails its integrity test and is not also run."""
    folder = _scratch_dags(tmp_path, "example_bash_operator.py", "{{ task_instance_key_str }}\"')",
                           "{{ task_instance_key_strr }}\"')")
    outcomes, output = _dag_lane(folder, tmp_path)
    failing = f"{INTEGRITY}[dags/example_bash_operator.py]"
    assert _not_passed(outcomes) == {failing: "failure"}, output[-6000:]
    assert "task_instance_key_strr" in outcomes[failing][1]
    run = outcomes["tests.dags.test_dag_runs::test_dag_runs_to_success[dags/example_bash_operator.py]"]
    assert run[0] == "skipped", run
    assert "example_bash_operator: fails integrity: see test_dag_file[dags/example_bash_operator.py]" in run[1], run
    assert outcomes["tests.dags.test_dag_runs::test_dag_runs_to_success[dags/etl_postgres.py]"][0] == "passed"
    assert _summary(output).startswith("1 failed, "), output[-3000:]


def test_a_connection_missing_from_two_environments_is_one_failure(tmp_path):
    """Parity names each missing item once, with every environment it is missing from: in the DAG lane's
    parity test, and in `python -m airstack.settings check` (the settings lane leaves parity to the DAG lane)."""
    folder = _scratch_dags(tmp_path, "example_bash_operator.py", "also_run_this = BashOperator(",
                           'also_run_this = BashOperator(\n        env={"X": "{{ conn.aws_local.host }}"},')
    test = "tests/dags/test_settings_parity.py"
    result = proc.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--numprocesses=0", "-q",
                       "--no-header", "-rfE", test], env={"AIRSTACK_DAGS_FOLDER": str(folder)},
                      cwd=paths.repo_root(), check=False, timeout=600)
    failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert len(failed) == 1, result.stdout[-4000:]
    expected = "connection `aws_local` (used by dags/example_bash_operator.py:"
    assert expected in result.stdout and "is missing from: integration, production" in result.stdout, \
        result.stdout[-4000:]
    # Told once in the failure's body; pytest's short summary line (`-rfE`) repeats it, truncated or not
    # depending on the terminal's width, so it is left out of the count.
    body = "\n".join(line for line in result.stdout.splitlines() if not line.startswith(("FAILED", "ERROR")))
    assert body.count(expected) == 1, result.stdout[-4000:]

    settings = proc.run([sys.executable, "-m", "airstack.settings", "check"],
                        env={"AIRSTACK_DAGS_FOLDER": str(folder)}, cwd=paths.repo_root(), check=False, timeout=300)
    lines = [line for line in settings.stderr.splitlines() if "aws_local" in line]
    assert settings.returncode == 1 and len(lines) == 1, settings.stdout + settings.stderr
    assert "missing from: integration, production" in lines[0], lines
    gate = testrun.gate_lanes(argparse.Namespace(changed_since=None), [], tmp_path)[1]
    assert "--no-parity" in next(lane for lane in gate if lane.name == "settings").argv


def test_what_the_other_dag_tests_are_told(tmp_path, dag_policy):
    """tests/dags/conftest.py's DagHealth, from one integrity check of a folder: which files the other tests leave
    out, which DAGs are not run, and why (each reason points at the integrity test that fails)."""
    from airstack.dagtools.check.parse import check_files, dag_files
    from tests.dags.checker.test_broken_dags import GOOD_ARGS, HEADER
    from tests.dags.conftest import DagHealth

    def dag(dag_id: str, command: str = "echo") -> str:
        return f'with DAG("{dag_id}", {GOOD_ARGS}):\n    BashOperator(task_id="t", bash_command="{command}")\n'

    folder = tmp_path / "dags"
    folder.mkdir()
    sources = {"good.py": dag("good"), "broken.py": "import not_a_module_anywhere\n" + dag("broken"),
               "typo.py": dag("typo_bad", "{{ dss }}") + dag("typo_good", "{{ ds }}")}
    for name, body in sources.items():
        (folder / name).write_text(HEADER + "from airflow.providers.standard.operators.bash import BashOperator\n"
                                   + body)
    (folder / "no_dag.py").write_text("# Helpers for our Airflow DAGs.\ndef helper():\n    return 1\n")
    health = DagHealth(folder, check_files(dag_files(folder), folder, dag_policy))

    assert health.import_failure(folder / "broken.py") == "fails to import: see test_dag_file[dags/broken.py]"
    assert health.not_run(folder / "broken.py") == "fails to import: see test_dag_file[dags/broken.py]"
    assert health.not_run(folder / "no_dag.py") == "defines no DAG: see test_dag_file[dags/no_dag.py]"
    assert health.import_failure(folder / "no_dag.py") is None  # imports: the walkers still read it
    assert [health.not_run(folder / n) for n in ("good.py", "typo.py")] == [None, None]
    assert health.run_skips() == {"typo_bad": "fails integrity: see test_dag_file[dags/typo.py]"}
    assert health.not_runnable(folder / "typo.py", "typo_good") is None
    assert health.not_runnable(folder / "typo.py", "typo_bad") == "fails integrity: see test_dag_file[dags/typo.py]"
    assert [p.name for p in health.importable("walker one")] == ["good.py", "no_dag.py", "typo.py"]
    assert sorted(d.dag_id for d in health.dags("walker two")) == ["good", "typo_bad", "typo_good"]  # any order
    assert health.left_out() == [
        "dags/broken.py fails to import: see test_dag_file[dags/broken.py]; left out of: walker one, walker two"]


def test_a_postgres_that_does_not_start_leaves_the_integrity_tests_running(tmp_path):
    """The session's Postgres is chosen but does not answer (an external DSN on a closed port): every test that
    needs it could not run, with the one reason; the tests that do not (integrity, policy, templates) still run
    and pass. The lane's tally counts no pass for what could not run, and no failure either."""
    import json
    import socket

    from airstack.verdict import INCOMPLETE, Tally, verdict

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    dsn = f"postgresql+psycopg2://airflow:unused@127.0.0.1:{closed}/airflow"
    outcomes, output = _dag_lane(paths.dags_folder(), tmp_path, AIRSTACK_TEST_POSTGRES="external",
                                 AIRSTACK_TEST_POSTGRES_DSN=dsn)
    integrity = {t: o for t, (o, _) in outcomes.items() if t.startswith(INTEGRITY)}
    assert integrity and set(integrity.values()) == {"passed"}, output[-6000:]
    runs = {t: m for t, (o, m) in outcomes.items() if "test_dag_runs_to_success" in t}
    assert runs and all(m.startswith("could not run: Postgres (external) did not start") for m in runs.values()), runs
    tally = Tally.from_dict(json.loads((tmp_path / "dags.json").read_text())["tally"])
    assert tally.failed == 0 and len(tally.not_run) == 1, tally
    assert verdict(tally) == INCOMPLETE
