"""airstack.airflow_env.configured: the process environment while a block runs, and as it was afterwards."""

from __future__ import annotations

import os

import pytest

from airstack.airflow_env import configured

SET, CHANGED, REMOVED = "AIRSTACK_TEST_ENV_SET", "AIRSTACK_TEST_ENV_CHANGED", "AIRSTACK_TEST_ENV_REMOVED"


@pytest.fixture
def before(monkeypatch) -> dict[str, str]:
    """One variable absent, two present (monkeypatch puts them back whatever the code under test does)."""
    monkeypatch.delenv(SET, raising=False)
    monkeypatch.setenv(CHANGED, "old")
    monkeypatch.setenv(REMOVED, "here")
    return environ()


def environ() -> dict[str, str]:
    """This process's environment but pytest's own note of the phase it is in (setup, call)."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def test_the_block_sees_the_variables_set_changed_and_removed(before):
    with configured({SET: "new", CHANGED: "changed", REMOVED: None}):
        assert (os.environ[SET], os.environ[CHANGED], REMOVED in os.environ) == ("new", "changed", False)
    assert environ() == before


def test_an_exception_restores_them_too(before):
    with pytest.raises(RuntimeError, match="boom"):
        with configured({SET: "new", CHANGED: "changed", REMOVED: None}):
            raise RuntimeError("boom")
    assert environ() == before


def test_what_the_block_itself_does_to_those_variables_is_undone(before):
    """Inside, the block may change them again (Airflow's own code, a nested configuration): on exit each is
    its old value, or unset."""
    with configured({SET: "new", CHANGED: "changed"}):
        os.environ[SET] = "again"
        del os.environ[CHANGED]
        with configured({CHANGED: "nested", REMOVED: None}):
            assert os.environ[CHANGED] == "nested"
        assert CHANGED not in os.environ and os.environ[REMOVED] == "here"
    assert environ() == before


def test_variables_it_was_not_given_are_left_alone(before, monkeypatch):
    with configured({SET: "new"}):
        monkeypatch.setenv("AIRSTACK_TEST_ENV_OTHER", "kept")
    assert os.environ["AIRSTACK_TEST_ENV_OTHER"] == "kept" and SET not in os.environ
