"""DAG versioning end to end: the local env on the deployed environments' bundle kind (GitDagBundle).

A scratch checkout's settings/local/deploy.yaml sets ``airflow.dag_bundle.kind: git`` on a bare
repository beside it. Real parts: Airflow 3.3 (native runtime, LocalExecutor, embedded Postgres),
git, the DAG checks, and the deploy command users run (``deploy local --dags``). Run 1 starts on
version 1 and waits at a gate. Meanwhile version 2 ships, and run 2 starts on it. Then both pass
the gate. Run 1's last task still runs version 1's code, and each DagRun's bundle_version and DAG
version name the commit it started with. (Airflow runs a task from its DagRun's bundle_version:
airflow.executors.workloads.task.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from airstack import paths, proc
from airstack.postgres.embedded import free_port
from tests.e2e.test_local_native import cli

pytestmark = pytest.mark.e2e

PROBE = '''"""e2e: which bundle version runs (tests/e2e/test_local_git_bundle.py)."""
import time
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

from common.defaults import DEFAULT_ARGS

VERSION = "{version}"

with DAG(dag_id="bundle_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         catchup=False, tags=["example"], default_args=DEFAULT_ARGS, doc_md=f"bundle probe {{VERSION}}"):
    @task
    def wait_at_the_gate() -> None:
        deadline = time.monotonic() + 240
        while not Path({gate!r}).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the gate")
            time.sleep(0.5)

    @task
    def report() -> str:
        return VERSION

    wait_at_the_gate() >> report()
'''


def git(root: Path, *argv: str) -> str:
    return proc.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *argv], cwd=root).stdout.strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from airstack.deploy.replay import git_checkout

    tmp = tmp_path_factory.mktemp("git-bundle")
    root = paths.scratch_copy(tmp / "checkout", ("dags", "plugins", "settings"),
                              ("pyproject.toml", ".sops.yaml", ".gitignore"))  # as a clone has it
    gate = tmp / "gate"
    deploy_yaml = root / "settings" / "local" / "deploy.yaml"
    data = yaml.safe_load(deploy_yaml.read_text())
    data["airflow"]["dag_bundle"] = {"kind": "git", "repository": str(tmp / "dags.git"), "refresh_interval": 2}
    deploy_yaml.write_text(yaml.safe_dump(data))
    (root / "dags" / "bundle_probe.py").write_text(PROBE.format(version="v1", gate=str(gate)))
    git_checkout(root)
    environ = {"AIRSTACK_ROOT": str(root), "AIRSTACK_LOCAL_API_PORT": str(free_port()),
               "AIRSTACK_LOCAL_POSTGRES_PORT": str(free_port())}
    yield {"root": root, "environ": environ, "gate": gate, "remote": tmp / "dags.git",
           "api": f"http://127.0.0.1:{environ['AIRSTACK_LOCAL_API_PORT']}/api/v2"}
    cli(environ, "clean", "--yes", check=False)


def api(env, method: str, path: str, **kwargs) -> dict:
    response = httpx.request(method, f"{env['api']}{path}", timeout=15, **kwargs)
    response.raise_for_status()
    return response.json()


def wait_for(what: str, probe, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def dag_versions(env) -> dict[str, int]:
    """bundle_version (commit) -> version_number, for bundle_probe's DAG versions."""
    try:
        rows = api(env, "GET", "/dags/bundle_probe/dagVersions")["dag_versions"]
    except httpx.HTTPStatusError:
        return {}
    return {row["bundle_version"]: row["version_number"] for row in rows if row["bundle_name"] == "dags"}


def task_state(env, run_id: str, task_id: str) -> str | None:
    return api(env, "GET", f"/dags/bundle_probe/dagRuns/{run_id}/taskInstances/{task_id}").get("state")


def test_a_running_dag_run_keeps_its_version_while_a_new_one_ships(env):
    root = env["root"]
    v1 = git(root, "rev-parse", "HEAD")
    out = cli(env["environ"], "up", "--runtime", "native").stdout
    assert "Airflow is up" in out, out
    # The first up shipped the checked-out commit: the local bundle's ref names it.
    assert git(env["remote"], "rev-parse", "refs/heads/airstack/dags/local") == v1
    wait_for("version 1 parsed from the git bundle", lambda: v1 in dag_versions(env))
    api(env, "PATCH", "/dags/bundle_probe", json={"is_paused": False})
    first = api(env, "POST", "/dags/bundle_probe/dagRuns", json={"logical_date": None})["dag_run_id"]
    wait_for("run 1 at the gate", lambda: task_state(env, first, "wait_at_the_gate") == "running")

    # Version 2, shipped the way users ship DAGs: the DAG checks, then the ref moves.
    (root / "dags" / "bundle_probe.py").write_text(PROBE.format(version="v2", gate=str(env["gate"])))
    git(root, "commit", "-qam", "bundle_probe v2")
    v2 = git(root, "rev-parse", "HEAD")
    shipped = proc.run([sys.executable, "-m", "airstack.deploy", "deploy", "local", "--dags", "--yes"],
                       env=env["environ"], cwd=root, check=False, timeout=300)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert git(env["remote"], "rev-parse", "refs/heads/airstack/dags/local") == v2
    versions = wait_for("version 2 parsed", lambda: (lambda found: found if v2 in found else None)(dag_versions(env)))
    # doc_md changed, so the serialized DAG did: a new DAG version (a change of task code alone keeps the
    # version row and moves its bundle_version; runs execute their DagRun's bundle_version all the same).
    assert v1 in versions and versions[v2] > versions[v1], versions

    second = api(env, "POST", "/dags/bundle_probe/dagRuns", json={"logical_date": None})["dag_run_id"]
    assert task_state(env, first, "wait_at_the_gate") == "running", "run 1 was disturbed by the new version"
    env["gate"].write_text("open\n")
    for run_id in (first, second):
        wait_for(f"{run_id} to finish", lambda run_id=run_id: api(env, "GET", f"/dags/bundle_probe/dagRuns/{run_id}")
                 ["state"] in ("success", "failed"), timeout=240)

    runs = {run_id: api(env, "GET", f"/dags/bundle_probe/dagRuns/{run_id}") for run_id in (first, second)}
    assert [runs[r]["state"] for r in (first, second)] == ["success", "success"]
    # Each DagRun names the bundle version it started with, and its tasks ran that version's code.
    assert (runs[first]["bundle_version"], runs[second]["bundle_version"]) == (v1, v2)
    assert [v["bundle_version"] for v in runs[first]["dag_versions"]] == [v1]
    assert [v["bundle_version"] for v in runs[second]["dag_versions"]] == [v2]
    reported = {run_id: api(env, "GET", f"/dags/bundle_probe/dagRuns/{run_id}/taskInstances/report/xcomEntries/"
                                        "return_value")["value"] for run_id in (first, second)}
    assert reported == {first: "v1", second: "v2"}
