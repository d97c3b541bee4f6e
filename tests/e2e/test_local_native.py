"""`nox -s up` with the native runtime, end to end, in a scratch copy of the repository on free ports."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from airstack import paths, proc
from airstack.localenv.config import LocalConfig
from airstack.postgres.embedded import free_port
from tests.e2e.progress import run_while_progressing

pytestmark = pytest.mark.e2e
ROOT = paths.repo_root()
# A DAG whose task fails, in the scratch copy only: `nox -s run` must say why.
FAILING_DAG = """
import pendulum
from airflow.sdk import dag, task

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["example"],
     default_args={"owner": "team", "retries": 0})
def fails_on_purpose():
    @task
    def validate():
        print("validating 3 rows")
        raise ValueError("expected 4 rows, got 3")

    validate()

fails_on_purpose()
"""
# A DAG file that fails to import, in the scratch copy only: `up` still comes up, and says so.
BROKEN_DAG = """from airflow.sdk import dag

tasks = undefined_operator_factory()
"""
# A DAG whose task fails twice, 5 s apart: `nox -s run` tells each attempt as it happens.
RETRIED_DAG = """
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["example"],
     default_args={"owner": "team", "retries": 1, "retry_delay": timedelta(seconds=5)})
def retried_on_purpose():
    @task
    def flaky():
        raise RuntimeError("the warehouse is not there")

    flaky()

retried_on_purpose()
"""
# A DAG file that takes 3 s to parse: `up` is ready only once its DAG is there.
SLOW_DAG = """import time

import pendulum
from airflow.sdk import DAG

time.sleep(3)
with DAG("slow_to_parse", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
         tags=["example"], default_args={"owner": "team", "retries": 0}):
    pass
"""
# Generated DAGs: the DAG processor writes them to the database after the parse process has ended (an idle
# processor is no proof that a file defines nothing).
MANY_DAGS = """import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

for number in range(150):
    with DAG(f"generated_{number:03}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
             tags=["example"], default_args={"owner": "team", "retries": 0}):
        EmptyOperator(task_id="only")
"""
# A file that Airflow parses (safe mode is off) and that defines no DAG: the only one `up` may call so.
NO_DAG = """from airflow.sdk import dag  # imported, never used

ROWS = 3
"""


def scratch_env(folder: Path, folders=("dags", "plugins", "settings")) -> tuple[Path, dict[str, str], dict]:
    """A scratch copy of the repository on free ports: (its root, the environment for the CLI, settings/local)."""
    root = paths.scratch_copy(folder, folders, ("pyproject.toml", ".sops.yaml"))
    api_port, pg_port = free_port(), free_port()
    environ = {"AIRSTACK_ROOT": str(root), "AIRSTACK_LOCAL_API_PORT": str(api_port),
               "AIRSTACK_LOCAL_POSTGRES_PORT": str(pg_port), "XDG_STATE_HOME": str(root.parent / "state")}
    # settings/local points warehouse_db at the env's Postgres port: follow the scratch port.
    from airstack.settings import store

    doc = store.decrypt_raw(root, "local")
    doc["airflow"]["connections"][0]["port"] = pg_port
    store.save(root, "local", doc)
    return root, environ, doc


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root, environ, _ = scratch_env(tmp_path_factory.mktemp("local-env"))
    api_port = environ["AIRSTACK_LOCAL_API_PORT"]
    (root / "dags" / "fails_on_purpose.py").write_text(FAILING_DAG)
    (root / "dags" / "broken_on_purpose.py").write_text(BROKEN_DAG)
    (root / "dags" / "retried_on_purpose.py").write_text(RETRIED_DAG)
    (root / "dags" / "slow_to_parse.py").write_text(SLOW_DAG)
    (root / "dags" / "no_dag_here.py").write_text(NO_DAG)
    (root / "dags" / "many_dags.py").write_text(MANY_DAGS)
    yield {"root": root, "environ": environ, "url": f"http://127.0.0.1:{api_port}"}
    cli(environ, "clean", "--yes", check=False)


def cli(environ, *argv, check=True, timeout=300):
    return proc.run([sys.executable, "-m", "airstack.localenv", *argv], env=environ, check=check, timeout=timeout,
                    cwd=ROOT)


def _api(env, path):
    response = httpx.get(f"{env['url']}/api/v2{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def _config(env) -> LocalConfig:
    return LocalConfig.from_env(env["root"], env["environ"])


def _postmaster(env) -> int:
    return int((_config(env).pgdata / "data" / "postmaster.pid").read_text().split()[0])


def _env_pids(env) -> set[int]:
    """Every process of the env: the services' process groups and the Postmaster with its children."""
    groups = {int(p.read_text()) for p in _config(env).run.glob("*.pid")}
    postmaster = _postmaster(env)
    pids = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid, pgid = int(entry.name), int(stat[1]), int(stat[2])
        if pgid in groups or pid == postmaster or ppid == postmaster:
            pids.add(pid)
    return pids


def _listening_addresses(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                found.add(fields[1].split(":")[0])
    return found


def _seconds(clock: str) -> int:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _wait_for_lock(lock_file: Path, holder: subprocess.Popen) -> None:
    """Return once ``holder`` (an `up`) holds the env's lock: the lock file names its pid (written after flock)."""
    while f"pid {holder.pid}" not in (lock_file.read_text() if lock_file.is_file() else ""):
        if holder.poll() is not None:
            out, err = holder.communicate()
            raise AssertionError(f"the first `up` ended before it held the lock:\n{out}{err}")
        time.sleep(0.05)


def test_native_environment_end_to_end(env):
    environ, root = env["environ"], env["root"]
    # A taken port: a clear error before anything starts (no database made), and nothing left running.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(environ["AIRSTACK_LOCAL_API_PORT"])))
        taken.listen()
        refused = cli(environ, "up", "--runtime", "native", check=False)
    assert refused.returncode == 1
    assert f"port {environ['AIRSTACK_LOCAL_API_PORT']} on 127.0.0.1 is taken" in refused.stderr
    assert not (_config(env).pgdata / "data").exists()

    up = cli(environ, "up", "--runtime", "native", check=False)
    out = up.stdout
    assert "Airflow is up" in out and "runtime: native" in out, out + up.stderr
    # Ready means ready: every DAG file parsed (the slow one's DAG is there when `up` returns), the import error
    # shown where it is, only the file without a DAG called so, and a distinct exit code.
    assert _api(env, "/dags/slow_to_parse")["dag_id"] == "slow_to_parse"
    assert up.returncode == 3, out + up.stderr
    assert "157 DAGs from 8 files; 1 file failed to import:" in out, out
    assert "dags/broken_on_purpose.py:3: NameError: name 'undefined_operator_factory' is not defined" in out, out
    assert [line.strip() for line in out.splitlines() if "defines no DAG" in line] == [
        "dags/no_dag_here.py: defines no DAG (list it in dags/.airflowignore if it is a helper)"], out
    assert {d["dag_id"] for d in _api(env, "/dags")["dags"]} >= {"example_bash_operator", "fails_on_purpose"}
    (root / "dags" / "broken_on_purpose.py").unlink()
    # Quiet: only up's own lines; Airflow's (alembic, the ORM, the masker) are in the `up` log.
    assert not [line for line in (out + up.stderr).splitlines() if "[info" in line or "alembic" in line], out
    assert "alembic" in _config(env).log_file("up").read_text()

    health = _api(env, "/monitor/health")
    assert {c: health[c]["status"] for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == \
        dict.fromkeys(("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy")
    assert "warehouse_db" in {c["connection_id"] for c in _api(env, "/connections")["connections"]}
    variables = {v["key"]: v["value"] for v in _api(env, "/variables")["variables"]}
    assert variables["etl_min_order_amount"] == "10"

    # An edited DAG file shows through the API without a restart (`nox -s bench -- dag-refresh` times it).
    dag_file = root / "dags" / "fails_on_purpose.py"
    dag_file.write_text(dag_file.read_text().replace('tags=["example"]', 'tags=["example", "edited"]'))
    deadline = time.monotonic() + 60
    while "edited" not in {t["name"] for t in _api(env, "/dags/fails_on_purpose")["tags"]}:
        assert time.monotonic() < deadline, "the edited DAG never showed up"
        time.sleep(0.2)

    status = json.loads(cli(environ, "status", "--json").stdout)
    assert status["healthy"] and status["exit_code"] == 0 and status["root"] == str(root)
    assert {s["service"]: s["running"] for s in status["services"]} == dict.fromkeys(
        ("postgres", "api-server", "scheduler", "dag-processor", "triggerer"), True)

    run = cli(environ, "run", "example_bash_operator", check=False)
    assert run.returncode == 0 and ": success" in run.stdout, run.stdout + run.stderr
    # A failed run says why: the task's exception, its line in the DAG file, its last log lines.
    failed = cli(environ, "run", "fails_on_purpose", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "task 'validate' failed: ValueError: expected 4 rows, got 3" in failed.stdout, failed.stdout
    assert "at dags/fails_on_purpose.py, line 11, in validate" in failed.stdout, failed.stdout
    assert "| validating 3 rows" in failed.stdout, failed.stdout
    as_json = json.loads(cli(environ, "run", "fails_on_purpose", "--json", check=False).stdout)
    assert as_json["state"] == "failed" and as_json["failures"][0]["error"] == "ValueError: expected 4 rows, got 3"

    # A run narrates: each state change as it happens, a failed attempt with when the next one starts, the error.
    retried = cli(environ, "run", "retried_on_purpose", check=False)
    assert retried.returncode == 1, retried.stdout + retried.stderr
    told = [line for line in retried.stdout.splitlines()
            if re.fullmatch(r"\d\d:\d\d:\d\d flaky (running|failed).*", line)]
    assert [line[9:].split(";")[0] for line in told] == [
        "flaky running (attempt 1 of 2)", "flaky failed (attempt 1 of 2)", "flaky running (attempt 2 of 2)",
        "flaky failed (attempt 2 of 2)"], retried.stdout
    failed_at, retry_at = re.fullmatch(r"(\S+) flaky failed \(attempt 1 of 2\); retrying at (\S+)", told[1]).groups()
    assert _seconds(retry_at) - _seconds(failed_at) in (5, 5 - 86400), told[1]  # retry_delay, across midnight too
    assert _seconds(told[2][:8]) >= _seconds(retry_at) or _seconds(retry_at) - _seconds(told[2][:8]) > 3600, told
    assert retried.stdout.index(told[-1]) < retried.stdout.index(
        "task 'flaky' failed: RuntimeError: the warehouse is not there"), retried.stdout

    addresses = _listening_addresses(_env_pids(env))
    assert addresses and addresses <= {"0100007F", "00000000000000000000000001000000"}, addresses  # 127.0.0.1, ::1

    # Two `up` at once: one proceeds, the other refuses with a clear message. (From down: an `up` of an env
    # that is all up is over in under a second.) The second starts once the first holds the lock, however
    # long the first takes to get there.
    cli(environ, "down")
    first = subprocess.Popen([sys.executable, "-m", "airstack.localenv", "up"], env={**os.environ, **environ},
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_lock(_config(env).lock_file, first)
    second = cli(environ, "up", check=False)
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_out + first_err
    assert second.returncode == 1 and "the local environment is busy (`up`, pid" in second.stderr

    cli(environ, "down")
    assert cli(environ, "status", check=False).returncode == 0  # all stopped: consistent
    cli(environ, "up")
    runs = _api(env, "/dags/example_bash_operator/dagRuns")["dag_runs"]
    assert any(r["state"] == "success" for r in runs), "the data of the first `up` survived down/up"

    # Postgres killed: a clear error, never a hang (the run stops at the health check; a command that stops
    # moving fails the test, however loaded the machine).
    os.kill(_postmaster(env), signal.SIGKILL)
    failed = run_while_progressing([sys.executable, "-m", "airstack.localenv", "run", "example_bash_operator"],
                                   env=environ, cwd=ROOT)
    assert failed.returncode == 1 and "is not healthy (metadatabase: unhealthy" in failed.stderr, failed.stderr

    cli(environ, "clean", "--yes")
    assert not (root / ".airstack" / "local" / "native").exists() and not _config(env).pgdata.exists()


def test_two_checkouts_up_at_once(tmp_path):
    """Two clones on one machine: each `up` chooses and records its own ports; a collision names the other."""
    state = {"XDG_STATE_HOME": str(tmp_path / "state")}
    roots = [paths.scratch_copy(tmp_path / name, ("dags", "plugins", "settings"), ("pyproject.toml", ".sops.yaml"))
             for name in ("first", "second")]
    environs = [{"AIRSTACK_ROOT": str(root), **state} for root in roots]
    try:
        for environ in environs:
            up = cli(environ, "up", "--runtime", "native", check=False)
            assert up.returncode == 0, up.stdout + up.stderr
        reports = [json.loads(cli(environ, "status", "--json").stdout) for environ in environs]
        assert all(r["healthy"] for r in reports)
        assert reports[0]["api_url"] != reports[1]["api_url"]
        assert [o["root"] for o in reports[1]["other_checkouts"]] == [str(roots[0])]
        assert reports[1]["other_checkouts"][0]["running"]
        for report in reports:
            # settings/local's warehouse_db (127.0.0.1:5433, "this env's Postgres") follows each checkout's port.
            postgres_port = int(next(s for s in report["services"] if s["service"] == "postgres")["listens_on"]
                                .rsplit(":", 1)[1])
            connection = httpx.get(f"{report['api_url']}/api/v2/connections/warehouse_db", timeout=10).json()
            assert connection["port"] == postgres_port
        # The second checkout asked to use the first one's port: one line naming the first checkout.
        port = reports[0]["api_url"].rsplit(":", 1)[1]
        cli(environs[1], "down")
        clash = cli({**environs[1], "AIRSTACK_LOCAL_API_PORT": port}, "up", check=False)
        assert clash.returncode == 1
        assert f"port {port} on 127.0.0.1 is taken by the local environment of {roots[0]}" in clash.stderr, \
            clash.stderr
    finally:
        for environ in environs:
            cli(environ, "clean", "--yes", check=False)
