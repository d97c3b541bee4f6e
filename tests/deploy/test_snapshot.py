"""Production's database is snapshotted before a deploy that may migrate it (airstack/deploy/snapshot.py), and a
migration that outlasts Helm's timeout is reported as such (airstack/deploy/migration_timeout.py).

Real parts: RDS, CloudFormation and S3 on the moto server (a real moto RDS instance, made by a CloudFormation stack;
moto's snapshots are ``available`` at once, so the waiter's first poll answers); the repository's own lock,
templates and deploy.yaml. Helm's messages are the ones its source prints (pkg/action, the kstatus waiter). The
whole deploy, with the helm stand-in, is in tests/deploy/test_migration_safety.py.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
from datetime import datetime, timezone

import boto3
import pytest

from airstack.deploy import config, migration_timeout, release, snapshot
from airstack.deploy.replay import records_bucket
from airstack.errors import ConfigError
from tests.deploy.conftest import production_database

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("infra/",)

RECORDS = "s3://integration-airflow-data-111122223333-eu-west-1/releases"
SHIPPED = {"apache-airflow": "3.3.2", "apache-airflow-core": "3.3.2", "apache-airflow-providers-fab": "3.10.2"}


# ------------------------------------------------------------------------------------------------ pure --
def test_the_lock_pins_every_package_that_carries_migrations(repo_root):
    found = snapshot.schema_versions((repo_root / snapshot.LOCK).read_text())
    assert set(found) == set(snapshot.SCHEMA_PACKAGES) and all(re.fullmatch(r"[\d.]+", v) for v in found.values())


def test_every_installed_provider_with_tables_of_its_own_is_a_schema_package():
    """A provider that declares a DB manager migrates tables of its own: its upgrade may migrate too."""
    with_tables = set()
    for dist in importlib.metadata.distributions():
        for entry in dist.entry_points:
            if entry.group == "apache_airflow_provider" and entry.load()().get("db-managers"):
                with_tables.add(dist.metadata["Name"].lower())
    assert with_tables and with_tables <= set(snapshot.SCHEMA_PACKAGES), with_tables


@pytest.mark.parametrize(("running", "expected"), [
    (None, "no release record says what runs there"),
    ({}, "its release record names no schema versions (written before they were recorded)"),
    (SHIPPED, None),
    ({**SHIPPED, "apache-airflow-core": "3.3.1"}, "apache-airflow-core 3.3.1 -> 3.3.2"),
    ({**SHIPPED, "apache-airflow-providers-fab": "3.10.1"}, "apache-airflow-providers-fab 3.10.1 -> 3.10.2"),
])
def test_a_snapshot_is_taken_where_the_schema_may_change_or_nobody_can_tell(running, expected):
    assert snapshot.migration_reason(running, SHIPPED) == expected


def test_a_snapshot_id_is_one_rds_accepts():
    now = datetime(2026, 12, 8, 1, 2, 3, tzinfo=timezone.utc)
    made = snapshot.snapshot_id("production-airflow", "0123456789abcdef" * 2, now)
    assert made == "production-airflow-predeploy-20261208-010203-0123456789ab"
    assert re.fullmatch(r"[A-Za-z](?:-?[A-Za-z0-9])*", made) and len(made) <= 255


def test_an_older_record_still_loads_with_no_schema_and_no_snapshot():
    old = {"environment": "production", "commit": "c" * 40, "registry": "r", "images": {}, "charts": {},
           "settings_digest": "d", "deployed_at": "", "promoted_from": "integration", "dags": {}}
    record = release.Record.from_json(json.dumps(old), "x")
    assert record.schema == {} and record.db_snapshot == ""


def test_only_the_one_rds_instance_of_the_stacks_is_the_database(repo_root):
    env = config.load(repo_root, "production")
    from airstack.deploy.cloudformation import load_template

    templates = {n: load_template(repo_root / "infra" / "cloudformation" / f"{n}.yaml")
                 for n in env.spec.cloudformation.stacks}
    found = snapshot.database_resource(templates, "airflow-production", "f")
    assert found == ("airflow-production-database", "DBInstance")
    with pytest.raises(ConfigError, match=r"^f: no stack makes an AWS::RDS::DBInstance, so the metadata database"):
        snapshot.database_resource({"network": templates["network"]}, "airflow-production", "f")


HELM4_UPGRADE = ('level=WARN msg="upgrade failed" name=airflow error="resource Deployment/airflow/airflow-scheduler '
                 'not ready. status: InProgress, message: Available: 0/1\\ncontext deadline exceeded"\n'
                 "Error: UPGRADE FAILED: release airflow failed, and has been rolled back due to rollback-on-failure "
                 "being set: resource Deployment/airflow/airflow-scheduler not ready. status: InProgress, message: "
                 "Available: 0/1\ncontext deadline exceeded\n")
HELM4_INSTALL = ("Error: release airflow failed, and has been uninstalled due to rollback-on-failure being set: "
                 "resource Deployment/airflow/airflow-api-server not ready. status: InProgress, message: "
                 "Available: 0/1\ncontext deadline exceeded\n")
HELM3_UPGRADE = ("Error: UPGRADE FAILED: release airflow failed, and has been rolled back due to atomic being set: "
                 "timed out waiting for the condition\n")
ROLLBACK_FAILED = ("Error: UPGRADE FAILED: an error occurred while rolling back the release. original upgrade error: "
                   "context deadline exceeded: Job.batch \"airflow-run-airflow-migrations\" is invalid: spec.template:"
                   " field is immutable\n")
NOT_A_TIMEOUT = ("Error: UPGRADE FAILED: release airflow failed, and has been rolled back due to atomic being set: "
                 "cannot patch \"airflow-scheduler\" with kind Deployment: field is immutable\n")


@pytest.mark.parametrize(("stderr", "release", "expected"), [
    (HELM4_UPGRADE, "airflow", "rolled back"),
    (HELM4_INSTALL, "airflow", "uninstalled"),
    (HELM3_UPGRADE, "airflow", "rolled back"),
    (ROLLBACK_FAILED, "airflow", ""),
    (NOT_A_TIMEOUT, "airflow", None),
    (HELM4_UPGRADE, "airflow-platform", None),
])
def test_helms_timeout_messages_are_told_from_other_failures(stderr, release, expected):
    found = migration_timeout.timed_out(stderr, release)
    assert (found.how if found else None) == expected


def test_the_report_says_the_schema_may_be_ahead_and_names_the_snapshot():
    argv = ["helm", "upgrade", "--install", "airflow", "airflow", "--repo", "https://airflow.apache.org",
            "--namespace", "airflow", "--kube-context", "prod", "--rollback-on-failure", "--wait", "--timeout", "15m"]
    assert migration_timeout.official_release(argv, "airflow") == "airflow"
    assert migration_timeout.official_release(argv, "charts/platform") is None
    db = snapshot.Database("production-airflow", "eu-west-1", "grp", ("sg-1",), "db.t4g.micro")
    text = migration_timeout.message(migration_timeout.Timeout("airflow", "rolled back"), argv, "production",
                                     snapshot.Snapshot("production-airflow-predeploy-x", db))
    assert text.startswith("airflow: the upgrade ran past its timeout (15m) and Helm rolled the release back, but "
                           "that does not undo a migration: the migration Job airflow-run-airflow-migrations")
    assert "the schema may now be ahead of the pods" in text
    assert "kubectl --context prod --namespace airflow get job airflow-run-airflow-migrations" in text
    assert "restore snapshot production-airflow-predeploy-x" in text and snapshot.restore_command(
        "production-airflow-predeploy-x", db) in text
    without = migration_timeout.message(migration_timeout.Timeout("airflow", "uninstalled"), argv, "integration")
    assert "Helm uninstalled the new release" in without and "no snapshot was taken" in without


def test_the_restore_command_puts_the_copy_where_the_instance_is():
    db = snapshot.Database("production-airflow", "eu-west-1", "production-db-subnets", ("sg-1", "sg-2"), "db.m7g.large")
    assert shlex.split(snapshot.restore_command("snap-1", db)) == [
        "aws", "rds", "restore-db-instance-from-db-snapshot", "--region", "eu-west-1", "--db-snapshot-identifier",
        "snap-1", "--db-instance-identifier", "production-airflow-restored", "--db-subnet-group-name",
        "production-db-subnets", "--vpc-security-group-ids", "sg-1", "sg-2", "--db-instance-class", "db.m7g.large"]


# ------------------------------------------------------------------------------------------- on moto --
@pytest.fixture()
def production(repo_root, aws_env):
    """production's deploy.yaml as committed, its records bucket and its database stack on the moto server."""
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="eu-west-1")
    records_bucket(repo_root, "production", s3)
    bucket, key = release.record_key(RECORDS, "production")
    s3.delete_object(Bucket=bucket, Key=key)  # the moto server outlives a test
    instance = production_database(aws_env)
    rds = boto3.client("rds", endpoint_url=aws_env, region_name="eu-west-1")
    for snap in rds.describe_db_snapshots(DBInstanceIdentifier=instance)["DBSnapshots"]:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snap["DBSnapshotIdentifier"])
    return config.load(repo_root, "production"), s3, rds, instance


def test_a_first_deploy_snapshots_the_database_and_says_how_to_restore(repo_root, production, capsys):
    env, _, rds, instance = production
    taken = snapshot.before_helm(repo_root, env, dry_run=False)
    (found,) = rds.describe_db_snapshots(DBInstanceIdentifier=instance)["DBSnapshots"]
    assert found["DBSnapshotIdentifier"] == taken.id and found["Status"] == "available"
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=found["DBSnapshotArn"])["TagList"]}
    assert tags["airstack:environment"] == "production"
    out = capsys.readouterr().out
    assert "no release record says what runs there" in " ".join(out.split())
    restore = taken.restore_command()
    assert f"\n  {restore}\n" in out, "the command on a line of its own, unwrapped"
    assert f"--db-snapshot-identifier {taken.id}" in restore
    groups = [g["VpcSecurityGroupId"] for g in rds.describe_db_instances(DBInstanceIdentifier=instance)[
        "DBInstances"][0]["VpcSecurityGroups"]]
    assert groups and f"--vpc-security-group-ids {' '.join(groups)}" in restore


def test_the_same_schema_takes_no_snapshot_and_a_dry_run_takes_none(repo_root, production, capsys):
    env, s3, rds, instance = production
    shipped = snapshot.schema_versions((repo_root / snapshot.LOCK).read_text())
    older = {**shipped, "apache-airflow-core": "3.2.2"}
    record = release.Record("production", "c" * 40, "r", {}, {}, "d", schema=older)
    release.write(s3, RECORDS, record)
    assert snapshot.before_helm(repo_root, env, dry_run=True) is None
    out = " ".join(capsys.readouterr().out.split())
    assert f"would snapshot {instance} before Helm: the deploy may migrate its schema (apache-airflow-core 3.2.2 -> " \
           f"{shipped['apache-airflow-core']})" in out
    release.write(s3, RECORDS, release.Record("production", "c" * 40, "r", {}, {}, "d", schema=shipped))
    assert snapshot.before_helm(repo_root, env, dry_run=False) is None
    assert "production: no schema change" in capsys.readouterr().out
    assert rds.describe_db_snapshots(DBInstanceIdentifier=instance)["DBSnapshots"] == []


def test_a_database_that_cannot_be_found_stops_with_one_line(repo_root, production):
    env, _, rds, instance = production
    rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
    with pytest.raises(snapshot.SnapshotError) as caught:
        snapshot.before_helm(repo_root, env, dry_run=False)
    assert str(caught.value) == ("the metadata database (airflow-production-database DBInstance) cannot be found: "
                                 f"DBInstanceNotFound: DBInstance {instance} not found.")


@pytest.mark.parametrize(("timeout", "seconds"), [("15m", 2100), ("1h30m", 11100), ("900s", 2100), ("2h", 14700)])
def test_helm_is_never_killed_while_it_waits_or_rolls_back(timeout, seconds):
    """deploy.yaml's helm.timeout, twice (the rollback waits as long again), and five minutes: a long migration's
    deploy is never cut off by the process timeout (a release left pending-upgrade)."""
    from airstack.deploy.helm_binary import process_timeout

    assert process_timeout(timeout) == seconds
