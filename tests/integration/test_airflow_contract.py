"""airstack.airflow_compat's contract on every Airflow release it supports (airstack.airflow_compat.RELEASES).

Per release, a venv with that Airflow: this environment where the lock pins that version, else a venv made
as the upgrade rehearsal makes its candidate (requirements/runtime.in re-pinned, the locks recompiled by uv
against the package index, installed with bytecode), kept under ~/.cache/airstack/airflow-contract/<version>/
for as long as requirements/ is unchanged. There, pytest runs tests/dags/checker/test_airflow_compat.py (each
capability of the seam does its job: lookups seen and refused, DAG calls seen, files parsed and listed, a DAG
serialized, a template context, a task policy, the metadata database, the CLI), test_airflow_seam.py (each
internal the DAG-run harness uses on that release) and test_dag_run_failures.py (the harness end to end on
Postgres: warm parent, forked worker, a task's exception, line and log; a good DAG succeeds).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from airstack import airflow_compat, paths, proc
from airstack.errors import AirstackError
from airstack.upgrade import steps

CONTRACT = ("tests/dags/checker/test_airflow_compat.py", "tests/dags/checker/test_airflow_seam.py",
            "tests/dags/checker/test_dag_run_failures.py")
CACHE = Path.home() / ".cache" / "airstack" / "airflow-contract"
UNREACHABLE = ("failed to fetch", "could not connect", "dns error", "connection refused", "network is unreachable")


def _inputs_digest() -> str:
    folder = paths.repo_root() / "requirements"
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())).hexdigest()[:16]


def _python_with(airflow: str) -> str:
    """A python with ``airflow`` installed: this one, or the cached venv (made again when requirements/ changed)."""
    if version("apache-airflow") == airflow:
        return sys.executable
    home = CACHE / airflow
    stamp, python = home / "inputs.sha256", home / "venv" / "bin" / "python"
    if python.is_file() and stamp.is_file() and stamp.read_text() == _inputs_digest():
        return str(python)
    uv = [shutil.which("uv") or pytest.skip("uv is not on PATH")]
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    try:
        steps.compile_candidate(paths.repo_root(), home, (("apache-airflow", airflow),), uv, f"Airflow {airflow}")
        built = steps.install(home, uv)
    except AirstackError as exc:
        if any(word in str(exc).lower() for word in UNREACHABLE):
            pytest.skip(f"the package index is unreachable, so Airflow {airflow} cannot be installed: {exc}")
        raise
    stamp.write_text(_inputs_digest())
    return built


@pytest.mark.parametrize("airflow", sorted(airflow_compat.CONTRACT_VERSIONS.values()))
def test_the_seam_keeps_its_contract_on(airflow):
    python = _python_with(airflow)
    result = proc.run([python, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", "--no-header", "-rfE",
                       "-k", "not test_the_gate_summary", *CONTRACT],
                      cwd=paths.repo_root(), env={"PYTHONPATH": str(paths.repo_root())}, check=False, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]
    seen = proc.run([python, "-c", "from airstack import airflow_compat as s; print(s.current())"],
                    env={"PYTHONPATH": str(paths.repo_root())}, check=False)
    assert f"airflow='{airflow}'" in seen.stdout, seen.stdout + seen.stderr
