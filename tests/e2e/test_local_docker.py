"""`nox -s up -- --runtime docker`, end to end: the same checks as the native runtime, plus no key on disk."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import pytest

from airstack import paths, proc
from airstack.docker_client import connect, get_client
from airstack.postgres.embedded import free_port
from tests.e2e.test_local_native import cli

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
    proc.run([sys.executable, "-m", "airstack.images", "build", "etl-basic"], env=environ, timeout=900)
    out = cli(environ, "up", "--runtime", "docker").stdout
    assert "runtime: docker (asked for)" in out and "Airflow is up" in out

    health = httpx.get(f"{env['url']}/api/v2/monitor/health", timeout=10).json()
    assert all(health[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "triggerer", "dag_processor"))
    connections = httpx.get(f"{env['url']}/api/v2/connections", timeout=10).json()["connections"]
    assert "warehouse_db" in {c["connection_id"] for c in connections}
    for dag_id in ("example_bash_operator", "etl_postgres_orders", "k8s_project_example"):
        run = cli(environ, "run", dag_id, check=False)
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

    cli(environ, "down")
    assert not any(c.status == "running" for c in _containers(env))
    cli(environ, "up")  # the recorded runtime: docker again
    runs = httpx.get(f"{env['url']}/api/v2/dags/example_bash_operator/dagRuns", timeout=10).json()["dag_runs"]
    assert any(r["state"] == "success" for r in runs), "the data survived down/up"

    postgres = next(c for c in _containers(env) if c.name.endswith("-postgres"))
    postgres.kill()
    started = time.monotonic()
    failed = cli(environ, "run", "example_bash_operator", check=False, timeout=30)
    assert failed.returncode == 1 and time.monotonic() - started < 10, failed.stderr

    cli(environ, "clean", "--yes")
    assert _containers(env) == []
