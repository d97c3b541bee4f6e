"""``nox -s check-dags`` in process: Airflow configured for the check only, the environment as it was after."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airstack.dagtools.check.main import main

GOOD = """\
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("fine", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["example"],
         default_args={"owner": "team", "retries": 1}):
    EmptyOperator(task_id="a")
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "fine.py").write_text(GOOD)
    return dags


def _check(folder: Path, seen: dict, monkeypatch) -> int:
    """The real check, with what Airflow was configured with while it ran noted on the way in."""
    from airstack.dagtools.check import main as check_main

    checked = check_main.check_files

    def noting(*args, **kwargs):
        seen.update(home=os.environ["AIRFLOW_HOME"], dags=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        return checked(*args, **kwargs)

    monkeypatch.setattr(check_main, "check_files", noting)
    return main([str(folder / "fine.py"), "--dags-folder", str(folder), "--workers", "1"])


def test_the_check_leaves_the_environment_as_it_was(folder, monkeypatch):
    before, seen = dict(os.environ), {}
    assert _check(folder, seen, monkeypatch) == 0
    assert seen["dags"] == str(folder.resolve())
    assert not Path(seen["home"]).exists()  # the check's own home, gone with it
    assert dict(os.environ) == before  # ...and AIRFLOW_HOME is not left pointing at it
    assert Path(os.environ["AIRFLOW_HOME"]).is_dir()


def test_without_an_airflow_home_none_is_left_behind(folder, monkeypatch):
    monkeypatch.delenv("AIRFLOW_HOME")
    seen = {}
    assert _check(folder, seen, monkeypatch) == 0
    assert seen["home"] and "AIRFLOW_HOME" not in os.environ
