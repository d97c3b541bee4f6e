"""The DAG-run harness's contract on every Airflow release it supports (airstack.airflow_compat.RELEASES).

Per release, a venv with that Airflow: this environment where the lock pins that version, else a
throwaway venv made as the upgrade rehearsal makes its candidate (requirements/runtime.in re-pinned,
the locks recompiled by uv against the package index, installed with bytecode). There, pytest runs
tests/dags/checker/test_airflow_seam.py (each internal the seam uses on that release) and
test_dag_run_failures.py (the harness end to end on Postgres: warm parent, forked worker, a task's
exception, line and log; a good DAG succeeds). Minutes per release beyond the installed one.
"""

from __future__ import annotations

import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from airstack import paths, proc
from airstack import airflow_compat
from airstack.upgrade import steps

CONTRACT = ("tests/dags/checker/test_airflow_seam.py", "tests/dags/checker/test_dag_run_failures.py")


def _python_with(airflow: str, scratch: Path) -> str:
    if version("apache-airflow") == airflow:
        return sys.executable
    uv = [shutil.which("uv") or pytest.skip("uv is not on PATH")]
    steps.compile_candidate(paths.repo_root(), scratch, (("apache-airflow", airflow),), uv, f"Airflow {airflow}")
    return steps.install(scratch, uv)


@pytest.mark.parametrize("airflow", sorted(airflow_compat.CONTRACT_VERSIONS.values()))
def test_the_harness_keeps_its_contract_on(airflow, tmp_path):
    python = _python_with(airflow, tmp_path)
    result = proc.run([python, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", "--no-header", "-rfE",
                       "-k", "not test_the_gate_summary", *CONTRACT],
                      cwd=paths.repo_root(), env={"PYTHONPATH": str(paths.repo_root())}, check=False, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]
    seen = proc.run([python, "-c", "from airstack import airflow_compat as s; print(s.current())"],
                    env={"PYTHONPATH": str(paths.repo_root())}, check=False)
    assert f"airflow='{airflow}'" in seen.stdout, seen.stdout + seen.stderr
