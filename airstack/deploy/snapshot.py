"""A snapshot of a protected environment's metadata database (RDS) before a deploy that may migrate it.

When: the official chart's migration Job (``airflow db migrate``) changes the schema only when the
Airflow it runs, or a provider with tables of its own (:data:`SCHEMA_PACKAGES`), changes version. So
the deploy compares those packages' versions in the runtime lock it ships (requirements/runtime.txt)
with the ones the environment's release record says it runs (``Record.schema``), and snapshots
before Helm where they differ, or where it cannot tell (no record, an older record without them, a
record that cannot be read, or an environment without records). A deploy that ships the same
versions takes none: RDS keeps 100 manual snapshots per region, and a deploy that cannot migrate
has nothing to undo.

How: the database is the ``AWS::RDS::DBInstance`` of the environment's CloudFormation stacks
(infra/cloudformation/database.yaml's ``DBInstance``), found through ``DescribeStackResource`` (so
``--only helm`` finds it too, and no template output is needed); ``CreateDBSnapshot``, then botocore's
``db_snapshot_available`` waiter. Its id goes into the release record (``db_snapshot``), and the exact
``aws rds restore-db-instance-from-db-snapshot`` command is printed. Any failure stops the deploy
before the DAG ref and Helm: nothing of the release has changed. ``--dry-run`` says what it would do.

AWS actions: cloudformation:DescribeStackResource, rds:DescribeDBInstances, rds:CreateDBSnapshot,
rds:AddTagsToResource (the snapshot's tags), rds:DescribeDBSnapshots (the waiter); s3:GetObject (the
record, as promotion reads it already). Clients come from :func:`airstack.deploy.aws.client_factory`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from airstack.errors import AirstackError, ConfigError

console = Console(highlight=False)

# The packages whose upgrade can migrate the metadata database: Airflow itself, and each provider that
# declares a DB manager (`db-managers` in its provider info: FAB's ab_* tables). A test checks the list
# against the providers installed.
SCHEMA_PACKAGES = ("apache-airflow", "apache-airflow-core", "apache-airflow-providers-fab")
LOCK = "requirements/runtime.txt"
RDS_INSTANCE = "AWS::RDS::DBInstance"
# An RDS snapshot of a small database takes minutes; a big one longer. Polled every 30 s for up to 2 hours.
WAIT = {"Delay": 30, "MaxAttempts": 240}


class SnapshotError(AirstackError):
    """No snapshot: the deploy stops before Helm."""


@dataclass(frozen=True)
class Database:
    """What a restore needs to put a copy where the instance is (its subnets, security groups and class)."""

    instance: str
    region: str
    subnet_group: str = ""
    security_groups: tuple[str, ...] = ()
    instance_class: str = ""


@dataclass(frozen=True)
class Snapshot:
    id: str
    database: Database

    def restore_command(self) -> str:
        return restore_command(self.id, self.database)


# ---------------------------------------------------------------------------------------------- pure --
def schema_versions(lock_text: str) -> dict[str, str]:
    """{package: version} of :data:`SCHEMA_PACKAGES` pinned in a pip-compile lock (``name==version``)."""
    found = {}
    for line in lock_text.splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", line.strip())
        if match and match.group(1).lower().replace("_", "-") in SCHEMA_PACKAGES:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def migration_reason(running: dict[str, str] | None, shipped: dict[str, str]) -> str | None:
    """Why this deploy may migrate the schema (pure); None: the versions that carry migrations are the same.

    ``running``: the record's ``schema`` ({} for a record written before it existed), None without a record."""
    if running is None:
        return "no release record says what runs there"
    if not running:
        return "its release record names no schema versions (written before they were recorded)"
    changed = [f"{name} {running.get(name, '-')} -> {shipped.get(name, '-')}" for name in sorted(running | shipped)
               if running.get(name) != shipped.get(name)]
    return ", ".join(changed) if changed else None


def snapshot_id(instance: str, commit: str, now: datetime) -> str:
    """``<instance>-predeploy-<UTC time>-<commit>``: letters, digits and single hyphens, as RDS wants."""
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return re.sub(r"-{2,}", "-", f"{instance}-predeploy-{stamp}-{commit[:12] or 'nocommit'}")[:255].rstrip("-")


def restore_command(snapshot: str, db: Database) -> str:
    """The ``aws`` command that restores ``snapshot`` to a new instance beside the original (RDS restores
    to a new instance only), in the original's subnets, security groups and class."""
    argv = ["aws", "rds", "restore-db-instance-from-db-snapshot", "--region", db.region,
            "--db-snapshot-identifier", snapshot, "--db-instance-identifier", f"{db.instance}-restored"]
    if db.subnet_group:
        argv += ["--db-subnet-group-name", db.subnet_group]
    if db.security_groups:
        argv += ["--vpc-security-group-ids", *db.security_groups]
    if db.instance_class:
        argv += ["--db-instance-class", db.instance_class]
    return shlex.join(argv)


def database_resource(templates: dict[str, dict], stack_prefix: str, where: str) -> tuple[str, str]:
    """(stack name, logical id) of the one RDS instance of the environment's stacks (``templates``: stack -> its
    template, in deploy order), or a ConfigError naming ``where``."""
    found = [(f"{stack_prefix}-{stack}", logical) for stack, template in templates.items()
             for logical, resource in (template.get("Resources") or {}).items()
             if isinstance(resource, dict) and resource.get("Type") == RDS_INSTANCE]
    if len(found) != 1:
        what = "no stack makes" if not found else f"{len(found)} resources are"
        raise ConfigError(f"{where}: {what} an {RDS_INSTANCE}, so the metadata database cannot be snapshotted "
                          "before a deploy that may migrate it")
    return found[0]


# ------------------------------------------------------------------------------------------ AWS calls --
def describe(cfn, rds, stack_name: str, logical_id: str, region: str) -> Database:
    """The instance CloudFormation made for ``logical_id``, with what a restore needs."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        instance = cfn.describe_stack_resource(StackName=stack_name, LogicalResourceId=logical_id)[
            "StackResourceDetail"]["PhysicalResourceId"]
        found = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    except (ClientError, BotoCoreError) as exc:
        raise SnapshotError(f"the metadata database ({stack_name} {logical_id}) cannot be found: {_why(exc)}") \
            from None
    return Database(instance, region, (found.get("DBSubnetGroup") or {}).get("DBSubnetGroupName", ""),
                    tuple(g["VpcSecurityGroupId"] for g in found.get("VpcSecurityGroups") or []),
                    found.get("DBInstanceClass", ""))


def take(rds, db: Database, snapshot: str, tags: dict[str, str], wait: dict | None = None) -> Snapshot:
    """Create the snapshot and wait until it is ``available``."""
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    try:
        rds.create_db_snapshot(DBSnapshotIdentifier=snapshot, DBInstanceIdentifier=db.instance,
                               Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])
        rds.get_waiter("db_snapshot_available").wait(DBSnapshotIdentifier=snapshot, WaiterConfig=wait or WAIT)
    except (ClientError, BotoCoreError, WaiterError) as exc:
        raise SnapshotError(f"snapshot {snapshot} of {db.instance} failed: {_why(exc)}") from None
    return Snapshot(snapshot, db)


def _why(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    return f"{error.get('Code')}: {error.get('Message')}" if error else str(exc).splitlines()[0]


# ------------------------------------------------------------------------------------------ the deploy --
def _running_schema(env) -> tuple[dict[str, str] | None, str]:
    """(the record's schema versions, or None without a record; a note where it could not be read)."""
    from airstack.deploy import release
    from airstack.deploy.shipping import records_client

    if env.spec.release is None:
        return None, ""
    try:
        record = release.read(records_client(env), env.spec.release.records, env.name)
    except release.RecordUnreadableError as exc:
        return None, f" (the record cannot be read: {exc})"
    return (record.schema if record else None), ""


def before_helm(root: Path, env, dry_run: bool, preview: bool = False) -> Snapshot | None:
    """A protected environment's snapshot before a deploy whose charts may migrate its database; None where none
    is needed (or in a dry run, which says what it would do). A SnapshotError or ConfigError stops the deploy."""
    from airstack import git_bundle
    from airstack.deploy import aws
    from airstack.deploy.cloudformation import load_template

    if not env.spec.protected or preview or env.spec.helm is None:
        return None
    shipped = schema_versions((root / LOCK).read_text())
    running, note = _running_schema(env)
    reason = migration_reason(running, shipped)
    console.rule("Database snapshot")
    if reason is None:
        console.print(f"{env.name}: no schema change ({', '.join(f'{k} {v}' for k, v in sorted(shipped.items()))}):"
                      " no snapshot")
        return None
    cf_spec = env.spec.cloudformation
    if cf_spec is None:
        raise ConfigError(f"{env.file}: cloudformation: none, so {env.name}'s metadata database (RDS) cannot be "
                          f"snapshotted before a deploy that may migrate it ({reason})")
    templates = {name: load_template(root / "infra" / "cloudformation" / f"{name}.yaml") for name in cf_spec.stacks}
    stack_name, logical_id = database_resource(templates, cf_spec.stack_prefix, f"{env.file}: cloudformation.stacks")
    clients = aws.client_factory(cf_spec.region)

    def find() -> Database:
        return describe(clients("cloudformation"), clients("rds"), stack_name, logical_id, cf_spec.region)

    if dry_run:
        try:
            target = find().instance
        except SnapshotError as exc:
            target = f"{stack_name}'s {logical_id} ({exc})"
        console.print(f"would snapshot {target} before Helm: the deploy may migrate its schema ({reason}{note})")
        return None
    db = find()
    commit = git_bundle.head_commit(root)
    snapshot = snapshot_id(db.instance, commit, datetime.now(timezone.utc))
    console.print(f"{env.name}: the deploy may migrate the schema ({reason}{note}): snapshot {snapshot} of "
                  f"{db.instance}...")
    taken = take(clients("rds"), db, snapshot, {"airstack:environment": env.name, "airstack:commit": commit})
    console.print(f"[green]snapshot {snapshot}[/]: available. To restore it (a new instance, beside {db.instance}):\n"
                  f"  {taken.restore_command()}\n  then point settings/{env.name}/secret.yaml's "
                  "airflow.metadata_connection at the new instance's endpoint, and deploy the commit that ran before",
                  soft_wrap=True)  # the command stays on one line, to copy
    return taken
