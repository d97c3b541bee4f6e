"""The whole deploy around a migration: production's snapshot before Helm, and a migration past Helm's timeout.

Real parts as in tests/deploy/test_promotion.py (Docker, docker-offline's registry, git, S3 on the moto server),
plus production's database as a real moto RDS instance of a CloudFormation stack. Helm and the cluster are the
recording stand-in; ``HELM_STANDIN_UPGRADE_TIMEOUT`` makes it fail as Helm 4 fails when ``--wait`` outlasts
``--timeout`` under ``--rollback-on-failure`` (here: the pods waiting for a migration that takes longer).
"""

from __future__ import annotations

import boto3

from airstack.cli import run_main
from airstack.deploy import release
from airstack.deploy.main import main
from airstack.standins.helm import TIMEOUT_ENV
from tests.deploy.test_dag_deploy import ref_on_remote
from tests.deploy.test_promotion import RECORDS, promotable

__all__ = ["promotable"]  # the fixture used here


def production_upgrades(calls: list[dict]) -> list[list[str]]:
    return [c["argv"] for c in calls if c["argv"][:1] == ["upgrade"]
            and c["argv"][c["argv"].index("--kube-context") + 1] == "airflow-production"]


def snapshots(endpoint: str) -> list[str]:
    rds = boto3.client("rds", endpoint_url=endpoint, region_name="eu-west-1")
    return [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]]


def test_a_snapshot_that_cannot_be_taken_stops_the_deploy_before_helm(promotable, helm_standin, aws_env, capsys):
    root, s3, _ = promotable
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    rds = boto3.client("rds", endpoint_url=aws_env, region_name="eu-west-1")
    rds.delete_db_instance(DBInstanceIdentifier="production-airflow", SkipFinalSnapshot=True)
    capsys.readouterr()
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: the metadata database (airflow-production-database DBInstance) cannot be "
                                "found: DBInstanceNotFound: DBInstance production-airflow not found."], err
    assert production_upgrades(helm_standin()) == [], "Helm ran"
    assert ref_on_remote(root, "production") is None, "the DAG ref moved"
    assert release.read(s3, RECORDS, "production") is None


def test_a_migration_past_helms_timeout_is_reported_with_the_snapshot(promotable, helm_standin, aws_env, capsys,
                                                                      monkeypatch):
    root, s3, _ = promotable
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    before = set(snapshots(aws_env))
    monkeypatch.setenv(TIMEOUT_ENV, "airflow")  # production's official chart release times out
    capsys.readouterr()
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 1
    out, err = capsys.readouterr()
    (taken,) = set(snapshots(aws_env)) - before
    assert f"snapshot {taken}" in out, "taken before Helm"
    assert [a[2] for a in production_upgrades(helm_standin())] == ["airflow-platform", "airflow"]
    lines = err.splitlines()
    assert lines[0] == ("error: airflow: the upgrade ran past its timeout (15m) and Helm uninstalled the new release, "
                        "but that does not undo a migration: the migration Job airflow-run-airflow-migrations may "
                        "have migrated the metadata database, or may still be migrating it, so the schema may now be "
                        "ahead of the pods (which wait for it at wait-for-migrations)."), lines
    assert any(f"restore snapshot {taken} (taken before this deploy): aws rds restore-db-instance-from-db-snapshot "
               f"--region eu-west-1 --db-snapshot-identifier {taken} " in line for line in lines), lines
    assert "rolled back" not in err.replace("Helm rolled", "") and "Traceback" not in err
    assert release.read(s3, RECORDS, "production") is None, "no record of a release that is not running"
