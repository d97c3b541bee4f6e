from __future__ import annotations

import os

import pytest

from airstack.cli import run_main
from airstack.settings.main import main

from tests.integration.settings_helpers import Repo, make_repo


@pytest.fixture()
def repo(tmp_path, monkeypatch) -> Repo:
    """A scratch repository (its own .sops.yaml and age keys) that the settings CLI works on."""
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no ~/.config/sops/age/keys.txt
    repo = make_repo(tmp_path)
    monkeypatch.setenv("AIRSTACK_ROOT", str(repo.root))
    monkeypatch.delenv("AIRSTACK_DAGS_FOLDER", raising=False)
    return repo


@pytest.fixture()
def cli(monkeypatch, capsys):
    """Run the settings CLI in this process, which keeps its own Fernet key whatever the CLI sets.

    Airflow caches its Fernet on first use: load it now, with this process's key, so that
    rows written here stay readable by every other process of the test run.
    """
    from airflow.models.crypto import get_fernet

    get_fernet()
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", os.environ["AIRFLOW__CORE__FERNET_KEY"])

    def run(*argv: str) -> tuple[int, str, str]:
        code = run_main(main, list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture()
def restore_db(airflow_db):
    """Whatever a test does to connections, variables and pools is undone afterwards."""
    from airstack.settings import importer

    before = importer.snapshot()
    yield before
    importer.apply_state(before, prune=True)
    assert importer.snapshot() == before


@pytest.fixture(scope="session")
def api_server(airflow_db, tmp_path_factory):
    """A real Airflow 3.3 api-server on 127.0.0.1, on the session's metadata database (no login needed)."""
    import sys
    from pathlib import Path

    from airstack.postgres.embedded import free_port
    from tests.helpers import server

    port = free_port()
    log_file = tmp_path_factory.mktemp("api-server") / "api-server.log"
    airflow = Path(sys.executable).parent / "airflow"
    url = f"http://127.0.0.1:{port}"
    with server([airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)], log_file,
                f"{url}/api/v2/monitor/health", 90,
                env={"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True", "AIRFLOW__API__WORKERS": "1"}):
        yield url
