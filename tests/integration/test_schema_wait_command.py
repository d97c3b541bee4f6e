"""What every Airflow pod's wait-for-migrations init container runs (airstack.deploy.schema_wait), run as that
container would on a real Postgres with the real Airflow 3.3 of the venv: the container's own command and
environment (the metadata connection from its Secret; the chart's airflow.cfg, with FAB as the auth manager).

No cluster here: the command runs as a process, not in a pod; tests/deploy/test_schema_wait.py renders the pods.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from airstack import proc
from airstack.deploy import schema_wait
from airstack.deploy.auth_policy import FAB_AUTH_MANAGER
from airstack.postgres import sql

AIRFLOW = Path(sys.executable).parent / "airflow"


def container_env(dsn: str, home: Path) -> dict[str, str]:
    """The init container's environment, its Secret reference resolved to ``dsn``; AIRFLOW_HOME holds an
    airflow.cfg that says what the chart's ConfigMap says about the auth manager."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "airflow.cfg").write_text(f"[core]\nauth_manager = {FAB_AUTH_MANAGER}\nload_examples = False\n")
    env = {"AIRFLOW_HOME": str(home)}
    for item in schema_wait.wait_container("airflow", "unused")["env"]:
        env[item["name"]] = item["value"] if "value" in item else dsn
    assert set(env) == {"AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__LOGGING__LOGGING_LEVEL"}
    return env


def wait_argv(seconds: int) -> list[str]:
    command = schema_wait.command(seconds)
    assert command[0] == "airflow"
    return [str(AIRFLOW), *command[1:]]  # the venv's `airflow`, as the image's PATH finds its own


def test_the_wait_fails_on_an_unmigrated_database_and_passes_once_migrated(postgres, tmp_path):
    env = container_env(sql.create_database(postgres.dsn, "schema_wait"), tmp_path / "home")
    started = time.monotonic()
    waited = proc.run(wait_argv(4), env=env, check=False, timeout=120)
    elapsed = time.monotonic() - started
    assert waited.returncode != 0, waited.stdout
    assert "There are still unapplied migrations after 4 seconds" in waited.stdout + waited.stderr
    assert elapsed >= 4, f"it gave up after {elapsed:.1f} s instead of waiting"

    proc.run([AIRFLOW, "db", "migrate"], env=env, timeout=300, what="airflow db migrate")
    started = time.monotonic()
    ok = proc.run(wait_argv(schema_wait.WAIT_SECONDS), env=env, check=False, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    print(f"wait on a migrated database: {time.monotonic() - started:.1f} s")


def test_a_pod_waiting_starts_as_soon_as_the_migration_ends(postgres, tmp_path):
    """The order of a first install: the pods' waits start before the migration Job, and end when it has."""
    env = container_env(sql.create_database(postgres.dsn, "schema_wait_order"), tmp_path / "home")
    waiting = proc.start(wait_argv(240), log_file=tmp_path / "wait.log", env=env, die_with_parent=True)
    try:
        time.sleep(3)
        assert waiting.poll() is None, (tmp_path / "wait.log").read_text()
        proc.run([AIRFLOW, "db", "migrate"], env=env, timeout=300, what="airflow db migrate")
        migrated = time.monotonic()
        code = waiting.wait(timeout=120)
        assert code == 0, (tmp_path / "wait.log").read_text()
        assert time.monotonic() - migrated < 30, "the wait noticed the migration late"
    finally:
        proc.stop(waiting)
