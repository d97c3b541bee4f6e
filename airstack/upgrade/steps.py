"""The rehearsal's steps that touch the world (each through airstack.proc): compile the candidate locks in a
scratch folder, install them into a throwaway venv, run the gate's DAG lane, ``airflow config lint`` and ruff.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from airstack import proc
from airstack.deploy.chart_values import OIDC_CONFIG
from airstack.gate import lint
from airstack.errors import AirstackError
from airstack.upgrade import dagresults, deployed, locks

# The gate's DAG checks (airstack.gate.testrun's dags lane): integrity, policy and templates per file, and
# every DAG run with dag.test() on Postgres (the gate's Postgres provider, started by tests/conftest.py).
DAG_TESTS = ("tests/dags/test_dag_integrity.py", "tests/dags/test_dag_runs.py")
DAG_SELECTION = " or ".join(dagresults.CHECKS)
LANE_TIMEOUT = 1800.0
COMPILED = locks.LOCKS  # the locks Airflow's version moves
COPIED = ("runtime.in", "dev.in", "runtime.txt", "dev.txt", "overrides.txt")


class UpgradeError(AirstackError):
    """The rehearsal cannot go on (the target does not resolve, the scratch venv cannot be made)."""


def uv_argv(uv: str | None) -> list[str]:
    return [uv or proc.which("uv", "install uv (`pip install uv`), or pass --uv PATH")]


def compile_candidate(root: Path, scratch: Path, pins: tuple[tuple[str, str], ...], uv: list[str],
                      title: str) -> None:
    """requirements/ copied to ``scratch``, runtime.in re-pinned, its runtime and dev locks recompiled there
    (the current locks are uv's preferences, so only what must move moves)."""
    folder = scratch / "requirements"
    folder.mkdir(parents=True)
    for name in COPIED:
        shutil.copy(root / "requirements" / name, folder / name)
    text = (folder / "runtime.in").read_text()
    for package, version in pins:
        text = locks.set_pin(text, package, version)
    (folder / "runtime.in").write_text(text)
    for name in COMPILED:
        result = proc.run(locks.compile_argv(uv, name), cwd=scratch, check=False, timeout=900)
        if result.returncode != 0:
            raise UpgradeError(f"{title} does not resolve with requirements/{name}.in and the overrides: "
                               f"{locks.resolution_failure(result.stderr)}")


def install(scratch: Path, uv: list[str]) -> str:
    """A throwaway venv with the candidate dev lock (the runtime lock plus the test tooling); its python."""
    venv = scratch / "venv"
    proc.run([*uv, "venv", "--quiet", "--python", locks.PYTHON, str(venv)], what="uv venv")
    python = venv / "bin" / "python"
    # Compiled: without bytecode (PYTHONDONTWRITEBYTECODE) big modules such as kubernetes_asyncio are compiled on
    # every import, and a DAG file that imports them can exceed Airflow's parse timeout.
    proc.run([*uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), "-r",
              "requirements/dev.txt", "--override", locks.OVERRIDES], cwd=scratch, timeout=1200,
             what="installing the candidate lock")
    return str(python)


def _last_line(*texts: str) -> str:
    for text in texts:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1][:400]
    return "no output"


def dag_lane(python: str, root: Path, junit: Path) -> dagresults.LaneResult:
    """The gate's DAG checks with ``python``'s packages, per DAG file (the repository's code on PYTHONPATH)."""
    argv = [python, "-m", "pytest", "--numprocesses=0", "--prestart", "-q", "--no-header", "-p", "no:cacheprovider",
            f"--junitxml={junit}", "-k", DAG_SELECTION, *DAG_TESTS]
    result = proc.run(argv, cwd=root, env={"PYTHONPATH": str(root)}, check=False, timeout=LANE_TIMEOUT,
                      what="the DAG lane")
    files = dagresults.parse_junit(junit.read_text()) if junit.is_file() else {}
    # 0 and 1 (some tests failed) are pytest's verdicts; anything else (interrupted, an internal error, a usage
    # error, no tests collected) means the lane did not run as a whole, whatever part of a report it left.
    finished = files and result.returncode in (0, 1)
    error = "" if finished else f"pytest exit {result.returncode}: {_last_line(result.stderr, result.stdout)}"
    return dagresults.LaneResult(files=files, error=error)


# Loads webserver_config.py as FAB does (a module run from its file), with the api-server's environment.
LOAD_WEBSERVER_CONFIG = "import runpy, sys; runpy.run_path(sys.argv[1])"


def config_lint(python: str, root: Path, env: str, scratch: Path) -> list[str]:
    """``airflow config lint`` (``python``'s Airflow) on the whole configuration ``env`` deploys, as the api-server
    gets it (its env, OIDC's included), and its ``webserver_config.py`` loaded by the same Airflow and FAB."""
    values = deployed.chart_values(root, env)
    sections, airflow_env = deployed.airflow_config(values)
    webserver_config, api_env = deployed.api_server(values)
    home = scratch / f"airflow-home-{env}"
    home.mkdir()
    (home / "airflow.cfg").write_text(deployed.cfg_text(sections))
    settings = {"AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
                # the metadata connection is a Secret there; a scratch SQLite file lets Airflow start here
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/lint.db", **airflow_env, **api_env}
    result = proc.run([python, "-m", "airflow", "config", "lint"], env=settings, inherit=(), cwd=home, check=False,
                      what="airflow config lint")
    if result.returncode != 0:
        return [f"Airflow does not start with this configuration: {_last_line(result.stderr, result.stdout)}"]
    findings = deployed.lint_findings(result.stdout)
    if webserver_config is not None:  # where the chart mounts apiServer.apiServerConfig ([fab] config_file)
        (home / "webserver_config.py").write_text(webserver_config)
        loaded = proc.run([python, "-c", LOAD_WEBSERVER_CONFIG, str(home / "webserver_config.py")], env=settings,
                          inherit=(), cwd=home, check=False, what="loading webserver_config.py")
        if loaded.returncode != 0:
            findings.append(f"the api-server's webserver_config.py ({OIDC_CONFIG}) does not "
                            f"load with this Airflow: {_last_line(loaded.stderr, loaded.stdout)}")
    return findings


def ruff(python: str, root: Path) -> list[str]:
    """ruff's AIR3 rules (``python``'s ruff) over the DAG and plugin code."""
    paths = [p for p in lint.AIRFLOW_PATHS if (root / p).exists()]
    result = proc.run([python, "-m", "ruff", *lint.RUFF_AIRFLOW, *paths], cwd=root, check=False, what="ruff")
    if result.returncode not in (0, 1):
        return [f"ruff failed (exit {result.returncode}): {_last_line(result.stderr)}"]
    return lint.ruff_lines(result.stdout, root)


def current_python() -> str:
    """The interpreter of the current lock (the shared environment this runs in)."""
    return sys.executable


def apply(root: Path, scratch: Path) -> list[str]:
    """The new runtime.in and the recompiled locks written into the repository; the files that changed.

    Each is staged next to its target first, then moved over it, so a failed write leaves the old files.
    """
    staged = []
    for name in ("runtime.in", *(f"{lock}.txt" for lock in COMPILED)):
        new, target = (scratch / "requirements" / name).read_bytes(), root / "requirements" / name
        if target.read_bytes() != new:
            temporary = target.with_name(f".{name}.upgrade")
            temporary.write_bytes(new)
            staged.append((temporary, target))
    for temporary, target in staged:
        os.replace(temporary, target)
    return [f"requirements/{target.name}" for _, target in staged]
