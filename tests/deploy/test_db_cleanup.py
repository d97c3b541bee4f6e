"""deploy.yaml's ``airflow.database_cleanup`` rendered by the official chart at the pinned release (the real
Helm engine): the databaseCleanup CronJob, its schedule, the retention in its command, the runtime image by
digest. tests/integration/test_db_cleanup.py runs the same command on a seeded Postgres.
"""

from __future__ import annotations

import pytest
import yaml

from airstack.cli import run_main
from airstack.deploy import db_cleanup
from airstack.deploy.main import main
from airstack.settings import deploy_file
from airstack.settings.deploy_file import AirflowOptions
from tests.deploy import official_chart
from tests.deploy.official_chart import ENVIRONMENTS, ROOT
from tests.deploy.charts.render import K8S_VERSIONS, assert_valid_kubernetes, by_kind
from tests.deploy.charts.render import official_chart_release  # noqa: F401 - the fixture
from tests.deploy.test_chart_digests import RUNTIME, render_pinned

CRONJOB = "airflow-database-cleanup"


def _container(objects: list[dict]) -> dict:
    cronjob = by_kind(objects, "CronJob")[CRONJOB]
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_retention_becomes_the_charts_cleanup_cronjob(official_chart_release, env):  # noqa: F811
    options = deploy_file.load(ROOT, env).spec.airflow
    cleanup = options.database_cleanup
    assert cleanup is not None, f"settings/{env}/deploy.yaml sets no airflow.database_cleanup"
    objects = render_pinned(official_chart_release, env, options)
    cronjob = by_kind(objects, "CronJob")[CRONJOB]
    assert cronjob["spec"]["schedule"] == cleanup.schedule
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    container = _container(objects)
    # The runtime image by its digest (chart 1.19.0's airflow_image: repository@digest), not apache/airflow.
    repository, digest = RUNTIME.split(":0123abcd@")
    assert container["image"] == f"{repository}@{digest}"
    # What runs is the module's command, retention and flags included (the Postgres test runs this same one).
    expected = db_cleanup.values(cleanup, db_cleanup.runtime_airflow(ROOT))["databaseCleanup"]
    assert (container["command"], container["args"]) == (expected["command"], expected["args"])
    (script,) = container["args"]
    assert f'date -u -d "-{cleanup.retention_days} days"' in script
    assert 'exec airflow db clean --clean-before-timestamp "$CLEAN_TS" --yes --skip-archive' in script
    assert "--error-on-cleanup-failure" in script  # the lock's Airflow (3.3.2) has the flag
    # The metadata connection reaches it as it reaches every Airflow pod: from the platform chart's Secret.
    (conn,) = [e for e in container["env"] if e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn["valueFrom"]["secretKeyRef"]["name"] == "airflow-metadata"
    assert_valid_kubernetes([cronjob], K8S_VERSIONS)


def test_without_a_retention_there_is_no_cronjob(official_chart_release):  # noqa: F811
    objects = render_pinned(official_chart_release, "integration", AirflowOptions())
    assert CRONJOB not in by_kind(objects, "CronJob")


def test_the_cleanup_values_are_keys_of_the_pinned_chart():
    cleanup = deploy_file.DatabaseCleanup(retention_days=30)
    values = db_cleanup.values(cleanup, "3.3.2")
    assert official_chart.unknown_keys(official_chart.schema(official_chart.pinned()[0]), values) == []


@pytest.mark.parametrize(("cleanup", "message"), [
    ({"retention_days": 0}, "airflow.database_cleanup.retention_days: Input should be greater than or equal to 1"),
    ({"retention_days": "ninety"}, "airflow.database_cleanup.retention_days: Input should be a valid integer"),
    ({"retention_days": 30, "schedule": "every night"}, "airflow.database_cleanup.schedule: String should match"),
    ({"schedule": "0 3 * * *"}, "airflow.database_cleanup.retention_days: Field required"),
    ({"retention_days": 30, "keep": "all"}, "airflow.database_cleanup.keep: Extra inputs are not permitted"),
])
def test_a_bad_retention_is_one_line_naming_file_and_field(scratch_repo, cleanup, message, capsys):
    root, _ = scratch_repo
    path = root / "settings" / "integration" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    data["airflow"]["database_cleanup"] = cleanup
    path.write_text(yaml.safe_dump(data))
    assert run_main(main, ["plan", "integration"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"settings/integration/deploy.yaml: {message}" in err[0], err
