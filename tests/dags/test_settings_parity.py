"""Every connection, variable and image the DAGs use exists in every environment (plaintext ids only)."""

from __future__ import annotations

import pytest

from airstack import paths
from airstack.settings import parity
from airstack.settings.store import environments

ENVIRONMENTS = environments(paths.repo_root())


def test_there_are_environments():
    assert {"local", "integration", "production"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_has_everything_the_dags_use(env):
    problems = parity.check(paths.repo_root(), paths.dags_folder(), [env])[env]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_the_dags_use_settings_at_all():
    """Guards the scanner: the example DAGs do name a connection, a variable and an image."""
    kinds = {(u.kind, u.name) for u in parity.scan_dags(paths.dags_folder())}
    assert {("connection", "warehouse_db"), ("variable", "etl_min_order_amount"), ("image", "etl-basic")} <= kinds
