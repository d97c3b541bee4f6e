"""`nox -s up -- --runtime docker`, end to end: the same checks as the native runtime, plus no key on disk.

Every command here runs for as long as it progresses (tests/e2e/progress.py): its output, the checkout's
logs and image builds, the env's containers and their logs. A loaded machine makes it slower, not red.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from airstack import paths
from airstack.docker_client import connect, get_client
from airstack.postgres.embedded import free_port
from tests.e2e.progress import run_while_progressing, tree_fingerprint
from tests.e2e.test_local_native import NO_DAG, ROOT, cli

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    folders = ("dags", "plugins", "settings", "images", "requirements")
    root = paths.scratch_copy(tmp_path_factory.mktemp("local-docker"), folders, ("pyproject.toml", ".sops.yaml"))
    api_port, pg_port = free_port(), free_port()
    environ = {"AIRSTACK_ROOT": str(root), "AIRSTACK_LOCAL_API_PORT": str(api_port),
               "AIRSTACK_LOCAL_POSTGRES_PORT": str(pg_port)}
    from airstack.settings import store

    doc = store.decrypt_raw(root, "local")
    doc["airflow"]["connections"][0]["port"] = pg_port  # warehouse_db follows the scratch port
    store.save(root, "local", doc)
    (root / "dags" / "no_dag_here.py").write_text(NO_DAG)  # up parses it once more, in the processor's container
    secrets = [v for v in doc["airflow"]["keys"].values() if isinstance(v, str) and v]
    secrets += [v for p in doc["projects"].values() for v in (p.get("secret") or {}).values()]
    yield {"root": root, "environ": environ, "url": f"http://127.0.0.1:{api_port}", "secrets": secrets,
           "project": doc["projects"]["example1"]}
    cli(environ, "clean", "--yes", check=False)


def _containers(env):
    from airstack.localenv.config import LocalConfig
    from airstack.localenv.docker_runtime import DockerRuntime

    runtime = DockerRuntime(LocalConfig.from_env(env["root"], env["environ"]), connect())
    return get_client().containers.list(all=True, filters={"label": f"io.airstack.env={runtime.env_id}"})


def _moving(env):
    """What moves while a command works on the env: the checkout's logs and build logs, the containers and
    their output."""
    def fingerprint():
        return tree_fingerprint(env["root"] / ".airstack"), [(c.name, c.status, len(c.logs())) for c in
                                                             _containers(env)]
    return fingerprint


def _cli(env, *argv):
    """`python -m airstack.localenv ARGV` for as long as it progresses (up's and run's own clocks set far off)."""
    if argv[0] in ("up", "run"):
        argv = (*argv, "--timeout", "7200")
    return run_while_progressing([sys.executable, "-m", "airstack.localenv", *argv], env=env["environ"], cwd=ROOT,
                                 progress=_moving(env), poll=5)


def _files_containing(needles: list[bytes], folders: list[Path]) -> list[str]:
    hits = []
    for folder in folders:
        for path in folder.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink() and any(n in path.read_bytes() for n in needles):
                    hits.append(str(path))
            except OSError:
                continue
    return hits


def test_docker_environment_end_to_end(env):
    environ = env["environ"]
    # The KPO example's worker image, as a user builds it (`nox -s build-images -- etl-basic`).
    built = run_while_progressing([sys.executable, "-m", "airstack.images", "build", "etl-basic"], env=environ,
                                  cwd=ROOT, progress=_moving(env), poll=5)
    assert built.returncode == 0, built.stdout + built.stderr
    up = _cli(env, "up", "--runtime", "docker")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "runtime: docker (asked for)" in up.stdout and "Airflow is up" in up.stdout
    assert [line.strip() for line in up.stdout.splitlines() if "defines no DAG" in line] == [
        "dags/no_dag_here.py: defines no DAG (list it in dags/.airflowignore if it is a helper)"], up.stdout

    health = httpx.get(f"{env['url']}/api/v2/monitor/health", timeout=10).json()
    assert all(health[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "triggerer", "dag_processor"))
    connections = httpx.get(f"{env['url']}/api/v2/connections", timeout=10).json()["connections"]
    assert "warehouse_db" in {c["connection_id"] for c in connections}
    for dag_id in ("example_bash_operator", "etl_postgres_orders", "k8s_project_example"):
        run = _cli(env, "run", dag_id)
        assert run.returncode == 0 and ": success" in run.stdout, run.stdout + run.stderr
    # The KPO tasks ran as containers of etl-basic, with the project's data folder and settings.
    (summary,) = (env["root"] / ".airstack" / "local" / "data" / "example1" / "summaries").glob("*.json")
    assert json.loads(summary.read_text())["currency"] == env["project"]["config"]["REPORT_CURRENCY"]

    containers = _containers(env)
    assert {c.name.rsplit("-", 1)[-1] for c in containers} >= {"postgres", "server", "scheduler", "processor",
                                                               "triggerer"}
    for container in containers:
        for bindings in (container.attrs["HostConfig"]["PortBindings"] or {}).values():
            assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, container.name
        config_env = "\n".join(container.attrs["Config"]["Env"] or [])
        for secret in env["secrets"]:
            assert secret not in config_env, f"a key is in {container.name}'s configuration"
    # dockerd's on-disk state of these containers (config, logs, writable layers) holds no key.
    folders = [Path(f"/var/lib/docker/containers/{c.id}") for c in containers]
    folders += [Path(c.attrs["GraphDriver"]["Data"]["UpperDir"]) for c in containers
                if c.attrs["GraphDriver"].get("Data", {}).get("UpperDir")]
    secrets = [v.encode() for v in env["secrets"]]
    assert _files_containing(secrets, [f for f in folders if f.exists()]) == []

    assert _cli(env, "down").returncode == 0
    assert not any(c.status == "running" for c in _containers(env))
    again = _cli(env, "up")  # the recorded runtime: docker again
    assert again.returncode == 0, again.stdout + again.stderr
    runs = httpx.get(f"{env['url']}/api/v2/dags/example_bash_operator/dagRuns", timeout=10).json()["dag_runs"]
    assert any(r["state"] == "success" for r in runs), "the data survived down/up"

    postgres = next(c for c in _containers(env) if c.name.endswith("-postgres"))
    postgres.kill()
    # A clear error, never a hang: the run stops at the health check (it never triggers nor waits for a run).
    failed = _cli(env, "run", "example_bash_operator")
    assert failed.returncode == 1 and "is not healthy (metadatabase: " in failed.stderr, failed.stderr

    assert _cli(env, "clean", "--yes").returncode == 0
    assert _containers(env) == []
