"""Every connection, variable and image the DAGs use exists in every environment (plaintext ids only).

One test for all environments: a missing item is one failure, naming every environment that lacks it.
A DAG file that does not import is left out (its integrity test fails; the end of the run says so).
"""

from __future__ import annotations

import pytest

from airstack import paths
from airstack.settings import parity
from airstack.settings.store import environments
from tests.dags.conftest import dag_health

ENVIRONMENTS = environments(paths.repo_root())


def test_there_are_environments():
    assert {"local", "integration", "production"} <= set(ENVIRONMENTS)


def test_every_environment_has_everything_the_dags_use():
    broken = dag_health().leave_out("settings parity (test_settings_parity.py)")
    problems = parity.problems(paths.repo_root(), paths.dags_folder(), ENVIRONMENTS, leave_out=broken)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_the_dags_use_settings_at_all():
    """Guards the scanner: the example DAGs do name a connection, a variable and an image."""
    kinds = {(u.kind, u.name) for u in parity.scan_dags(paths.dags_folder())}
    assert {("connection", "warehouse_db"), ("variable", "etl_min_order_amount"), ("image", "etl-basic")} <= kinds
