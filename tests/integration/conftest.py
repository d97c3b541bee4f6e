from __future__ import annotations

import pytest

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
def restore_db(airflow_db):
    """Whatever a test does to connections, variables and pools is undone afterwards."""
    from airstack.settings import importer

    before = importer.snapshot()
    yield before
    importer.apply_state(before, prune=True)
    assert importer.snapshot() == before
