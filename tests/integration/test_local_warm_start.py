"""The pieces of a fast `up`, on real parts: the launcher (Airflow imported once, services forked from
it) and the settings shortcut (digest + row fingerprint on a real Postgres)."""

from __future__ import annotations

import time
from pathlib import Path

from airstack import paths
from airstack.airflow_env import base_env
from airstack.localenv import applied
from airstack.localenv.launcher import Launcher
from airstack.settings import store

ROOT = paths.repo_root()


def test_launcher_lists_what_the_dag_processor_parses_and_forks_airflow_commands(tmp_path):
    dags = tmp_path / "dags"
    (dags / "common").mkdir(parents=True)
    (dags / "a_dag.py").write_text("from airflow.sdk import dag\n")
    (dags / "plain.py").write_text("print('no keywords')\n")  # parsed too: the project turns safe mode off
    (dags / "notes.txt").write_text("from airflow.sdk import dag\n")
    (dags / "common" / "helpers.py").write_text("from airflow.sdk import dag\n")
    (dags / ".airflowignore").write_text("common/\n")
    env = base_env(tmp_path / "home", dags, tmp_path / "plugins") | {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'unused.db'}"}
    launcher = Launcher(env, tmp_path / "launcher.log", tmp_path)
    try:
        assert launcher.dag_files(dags) == ["a_dag.py", "plain.py"]
        assert launcher.import_seconds > 0
        log = tmp_path / "version.log"
        pid = launcher.fork(["airflow", "version"], log)
        assert pid > 0
        deadline = time.monotonic() + 60
        while not (log.is_file() and log.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        from importlib.metadata import version

        assert log.read_text().strip().splitlines()[-1] == version("apache-airflow-core")
    finally:
        launcher.close()
    assert launcher.process.returncode == 0


def test_launcher_that_cannot_import_airflow_says_why(tmp_path):
    import pytest

    from airstack.errors import LocalEnvError

    env = {"AIRFLOW__CORE__EXECUTOR": "NoSuchExecutor", "AIRFLOW_HOME": str(tmp_path),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "nonsense://"}
    launcher = Launcher(env, tmp_path / "launcher.log", tmp_path)
    with pytest.raises(LocalEnvError, match="Airflow could not be imported to start the services; last lines"):
        launcher.dag_files(tmp_path)
    assert launcher.process.poll() is not None


def test_settings_shortcut_sees_a_changed_file_and_a_changed_row(airflow_db, restore_db, tmp_path):
    from airflow.models import Variable

    from airstack.settings import importer

    settings = store.load(ROOT, "local").airflow
    importer.apply(settings)
    record, dsn = tmp_path / "applied", airflow_db.dsn
    digest = applied.digest(settings, 5433)
    applied.remember(record, digest, dsn)
    assert applied.unchanged(record, digest, dsn)
    assert not applied.unchanged(record, applied.digest(settings, 5434), dsn)  # what up imports differs
    changed = settings.model_copy(update={"variables": {**settings.variables, "extra_one": "x"}})
    assert not applied.unchanged(record, applied.digest(changed, 5433), dsn)
    key = next(iter(settings.variables))
    Variable.set(key, "edited in the UI")  # the database moved: import again
    assert not applied.unchanged(record, digest, dsn)
    assert "edited in the UI" not in Path(record).read_text()  # the record holds digests only
