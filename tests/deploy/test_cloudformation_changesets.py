"""The CloudFormation deploy engine (airstack.deploy.cloudformation) deploying and destroying on the real moto server.

Moto stands in for AWS; each test names the quirk of it that it relies on or works around (DESIGN.md and
infra/cloudformation/README.md list them). The ones met here:

- identical input: an UPDATE change set with the same template and parameters is FAILED with the reason
  "The submitted information didn't contain changes...", as on AWS;
- no outputs: a stack has no Outputs after ``execute_change_set`` (a stack made by ``create_stack`` has them);
- no failed states: an execution error comes back synchronously from ``execute_change_set`` (as the
  resource's own error, e.g. BucketAlreadyExists), the stack stays REVIEW_IN_PROGRESS and no *_FAILED
  event is ever recorded; the failed-events report is therefore also tested on a stubbed client;
- change set rows are diffed on the template only: a parameter-only change gives an executable UPDATE
  change set with no rows (AWS lists the resources that use the parameter);
- executed change sets stay listed (EXECUTE_COMPLETE) by list_change_sets, where AWS drops them;
- S3::BucketPolicy is skipped with a warning (filtered below).

The moto server is shared by the test process: every test uses its own EnvironmentName,
RepositoryPrefix and stack prefix.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from airstack.deploy import cloudformation as cfn
from airstack.errors import ConfigError
from tests.deploy.test_cloudformation_deploy import (REGION, WAITS, aws, console, env_name, integration_specs,
                                                     live_status, refuse, run_deploy, spec_for, unexecuted_change_sets,
                                                     write)

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("infra/",)

__all__ = ["aws", "env_name"]  # fixtures used here


# ------------------------------------------------------------------------- moto deploy --
def test_deploy_creates_registries_and_logs(aws, repo_root, env_name):
    """Both stacks reach CREATE_COMPLETE and their resources exist. Quirk relied on: moto returns no
    Outputs after execute_change_set, so the outputs returned are empty (AWS would give ImageRegistry...)."""
    specs = integration_specs(repo_root, env_name)
    outputs, shown = run_deploy(aws, specs)
    cf = aws("cloudformation")
    assert [live_status(cf, s.stack_name) for s in specs] == ["CREATE_COMPLETE", "CREATE_COMPLETE"]
    assert set(outputs) == {"registries", "logs"}
    assert "AirflowRepository" in shown and "LogsBucket" in shown and "new stack" in shown

    prefix = f"airflow-{env_name}"
    names = [f"{prefix}/{image}" for image in ("airflow", "etl-basic", "pandas-basic")]
    found = aws("ecr").describe_repositories(repositoryNames=names)["repositories"]
    assert sorted(r["repositoryName"] for r in found) == names
    buckets = [b["Name"] for b in aws("s3").list_buckets()["Buckets"]]
    assert f"{env_name}-airflow-logs-123456789012-{REGION}" in buckets
    assert all(unexecuted_change_sets(cf, s.stack_name) == [] for s in specs)


def test_redeploy_with_nothing_changed_plans_no_changes(aws, repo_root, env_name):
    """Quirk relied on: an identical template and parameters give a FAILED change set whose reason says it
    "didn't contain changes" (as AWS does); that is "no changes", nothing is executed (confirm is never
    asked), and the FAILED change set is deleted. (Executed change sets stay listed on moto, hence the
    filter on EXECUTE_COMPLETE.)"""
    specs = integration_specs(repo_root, env_name)
    run_deploy(aws, specs)
    cf = aws("cloudformation")
    events_before = {s.stack_name: len(cf.describe_stack_events(StackName=s.stack_name)["StackEvents"])
                     for s in specs}
    _, shown = run_deploy(aws, specs, confirm=refuse)
    assert f"{env_name}-registries: no changes" in shown and f"{env_name}-logs: no changes" in shown
    for spec in specs:
        assert unexecuted_change_sets(cf, spec.stack_name) == []
        assert len(cf.describe_stack_events(StackName=spec.stack_name)["StackEvents"]) == events_before[
            spec.stack_name]


def add_tag(template: Path, dest: Path) -> Path:
    """The logs template with one more tag on the bucket (a template change moto lists as a row)."""
    text = template.read_text()
    tag = "        - {Key: Environment, Value: !Ref EnvironmentName}\n"
    assert tag in text
    return write(dest, text.replace(tag, tag + "        - {Key: Purpose, Value: task-logs}\n", 1))


def test_a_change_is_planned_as_an_update_and_can_be_declined(aws, repo_root, env_name, tmp_path):
    """Declining deletes the UPDATE change set and changes nothing. Quirk worked around: moto diffs change
    set rows on the template only, so a parameter-only change (LogRetentionDays) is an executable UPDATE
    change set with no rows (AWS would list LogsBucket); a template change (one more tag) is what makes
    moto list the LogsBucket row."""
    (spec,) = integration_specs(repo_root, env_name, ["logs"])
    run_deploy(aws, [spec])
    cf = aws("cloudformation")
    body_before = cf.get_template(StackName=spec.stack_name)["TemplateBody"]

    spec.parameters["LogRetentionDays"] = "12"
    parameter_only = cfn.ChangeSets(cf, WAITS).plan(spec, spec.parameters)
    try:
        assert (parameter_only.change_set_type, parameter_only.has_changes) == ("UPDATE", True)
        assert {c.logical_id for c in parameter_only.changes} <= {"LogsBucket"}
    finally:
        cfn.ChangeSets(cf, WAITS).discard(parameter_only)

    spec.template = add_tag(spec.template, tmp_path / "logs.yaml")
    asked = []

    def decline(spec_, plan_):
        asked.append(plan_)
        return False

    with pytest.raises(cfn.DeployError, match="declined"):
        run_deploy(aws, [spec], confirm=decline)
    (declined,) = asked
    assert declined.change_set_type == "UPDATE"
    assert [(c.action, c.logical_id, c.resource_type) for c in declined.changes] == [
        ("Modify", "LogsBucket", "AWS::S3::Bucket")]
    assert declined.status is cfn.ChangeSetStatus.DELETED
    assert unexecuted_change_sets(cf, spec.stack_name) == []
    stack = cf.describe_stacks(StackName=spec.stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert cf.get_template(StackName=spec.stack_name)["TemplateBody"] == body_before
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["LogRetentionDays"] == "30"


def test_the_table_shows_the_rows(aws, repo_root, env_name, tmp_path):
    """render_changes: one row per resource with action, logical id and type. (Moto gives no Replacement.)"""
    from rich.console import Console

    (spec,) = integration_specs(repo_root, env_name, ["registries"])
    cf = aws("cloudformation")
    plan = cfn.ChangeSets(cf, WAITS).plan(spec, spec.parameters)
    try:
        out = io.StringIO()
        Console(file=out, width=200, color_system=None).print(cfn.render_changes(plan))
        text = out.getvalue()
        for logical_id in ("AirflowRepository", "EtlBasicRepository", "PandasBasicRepository"):
            assert logical_id in text
        assert text.count("AWS::ECR::Repository") == 3 and "Add" in text
    finally:
        cfn.ChangeSets(cf, WAITS).discard(plan)
    assert live_status(cf, spec.stack_name) is None


def test_dry_run_on_a_new_stack_leaves_nothing(aws, repo_root, env_name):
    """The plan is shown, then the CREATE change set and the REVIEW_IN_PROGRESS stack holding it are
    deleted: no stack is left (only a DELETE_COMPLETE summary, as AWS keeps for 90 days)."""
    (spec,) = integration_specs(repo_root, env_name, ["logs"])
    outputs, shown = run_deploy(aws, [spec], confirm=refuse, dry_run=True)
    assert outputs == {"logs": {}}
    assert "LogsBucket" in shown and "dry run" in shown
    cf = aws("cloudformation")
    assert live_status(cf, spec.stack_name) is None
    summaries = [s for s in cf.list_stacks()["StackSummaries"] if s["StackName"] == spec.stack_name]
    assert {s["StackStatus"] for s in summaries} <= {"DELETE_COMPLETE"}
    buckets = [b["Name"] for b in aws("s3").list_buckets()["Buckets"]]
    assert not [b for b in buckets if b.startswith(f"{env_name}-")]


def test_dry_run_skips_a_stack_that_needs_an_undeployed_output(aws, repo_root, env_name, tmp_path):
    """In a dry run, a stack whose input is the output of an earlier stack not deployed yet is reported
    as not planned, instead of failing (on AWS and moto alike: the earlier stack does not exist)."""
    logs = integration_specs(repo_root, env_name, ["logs"])[0]
    consumer = spec_for(tmp_path, f"{env_name}-consumer", CONSUMER.format(env=env_name))
    outputs, shown = run_deploy(aws, [logs, consumer], confirm=refuse, dry_run=True)
    assert set(outputs) == {"logs"}
    assert "needs LogsBucketArn from logs" in shown


def test_a_confirm_that_raises_still_deletes_the_change_set(aws, repo_root, env_name):
    """Every unexecuted change set is deleted on every path: here confirm raises (as Ctrl-C at the prompt
    would), and the change set and the empty REVIEW_IN_PROGRESS stack go."""
    (spec,) = integration_specs(repo_root, env_name, ["registries"])

    def interrupted(spec_, plan_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_deploy(aws, [spec], confirm=interrupted)
    cf = aws("cloudformation")
    assert live_status(cf, spec.stack_name) is None
    assert unexecuted_change_sets(cf, spec.stack_name) == []


BUCKET_TEMPLATE = """\
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties: {{BucketName: {bucket}}}
"""


def test_a_failing_execution_reports_the_error_and_the_events_command(aws, env_name, tmp_path):
    """A bucket whose name is taken. Quirk worked around: moto has no failed states, its execute_change_set
    itself raises the resource's error (BucketAlreadyExists) and records no *_FAILED event (the events
    report is tested on a stub below). The report still ends with the describe-stack-events command, and
    the change set and the empty REVIEW_IN_PROGRESS stack are cleaned up."""
    bucket = f"{env_name}-taken"
    aws("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    spec = spec_for(tmp_path, f"{env_name}-failing", BUCKET_TEMPLATE.format(bucket=bucket))
    with pytest.raises(cfn.DeployError) as raised:
        run_deploy(aws, [spec])
    message = str(raised.value)
    assert "BucketAlreadyExists" in message
    assert message.splitlines()[-1].endswith(
        f"aws cloudformation describe-stack-events --stack-name {spec.stack_name} --region {REGION}")
    cf = aws("cloudformation")
    assert live_status(cf, spec.stack_name) is None
    assert unexecuted_change_sets(cf, spec.stack_name) == []


def test_a_failed_stack_reports_its_failed_events():
    """What AWS does and moto cannot (no failed states): the stack ends in ROLLBACK_COMPLETE and its events
    hold CREATE_FAILED. A botocore Stubber plays CloudFormation; the report lists the failed events since
    the execution started (not the older one), with resource, status and reason, then the command."""
    import boto3
    from botocore.stub import Stubber

    cf = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name=REGION).client(
        "cloudformation", endpoint_url="http://127.0.0.1:9")
    spec = cfn.StackSpec("logs", "env-logs", Path("logs.yaml"), {}, ())
    plan = cfn.Plan(spec, "arn:stack/env-logs/1", REGION, "airstack-x", "arn:changeSet/airstack-x/1", "CREATE",
                    cfn.ChangeSetStatus.READY)

    def event(event_id, logical_id, status, reason=""):
        return {"StackId": plan.stack_id, "EventId": event_id, "StackName": "env-logs",
                "LogicalResourceId": logical_id, "ResourceType": "AWS::S3::Bucket", "ResourceStatus": status,
                "ResourceStatusReason": reason, "Timestamp": "2026-01-01T00:00:00Z"}

    old = event("e0", "OldBucket", "CREATE_FAILED", "an older failure")
    with Stubber(cf) as stub:
        stub.add_response("describe_stack_events", {"StackEvents": [old]})
        stub.add_response("execute_change_set", {})
        stub.add_response("describe_stacks", {"Stacks": [{"StackName": "env-logs", "StackStatus": "ROLLBACK_COMPLETE",
                                                          "CreationTime": "2026-01-01T00:00:00Z"}]})
        stub.add_response("describe_stack_events", {"StackEvents": [
            event("e3", "env-logs", "ROLLBACK_COMPLETE"),
            event("e2", "LogsBucket", "CREATE_FAILED", "Resource handler returned message: bucket exists"),
            event("e1", "LogsBucket", "CREATE_IN_PROGRESS"), old]})
        with pytest.raises(cfn.DeployError) as raised:
            cfn.ChangeSets(cf, WAITS).execute(plan)
    lines = str(raised.value).splitlines()
    assert lines[0] == "env-logs: the create failed (ROLLBACK_COMPLETE)"
    assert lines[1:-1] == ["  LogsBucket (AWS::S3::Bucket): CREATE_FAILED: Resource handler returned message: "
                           "bucket exists"]
    assert lines[-1] == f"See every event: aws cloudformation describe-stack-events --stack-name env-logs " \
                        f"--region {REGION}"


CONSUMER = """\
Parameters:
  EnvironmentName: {{Type: String, Default: {env}}}
  LogsBucketArn: {{Type: String}}
Resources:
  LogsArn:
    Type: AWS::SSM::Parameter
    Properties: {{Name: /{env}/logs-bucket-arn, Type: String, Value: !Ref LogsBucketArn}}
"""


def test_outputs_of_an_earlier_stack_feed_a_later_stack(aws, repo_root, env_name, tmp_path):
    """Quirk worked around: moto has no Outputs after execute_change_set, but does for create_stack. So the
    earlier stack (logs) is made with create_stack; deploy plans it "no changes" (identical input: the
    quirk relied on), reads its outputs with describe_stacks and feeds LogsBucketArn to the consumer."""
    (logs,) = integration_specs(repo_root, env_name, ["logs"])
    cf = aws("cloudformation")
    cf.create_stack(StackName=logs.stack_name, TemplateBody=logs.template.read_text(),
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in logs.parameters.items()])
    consumer = spec_for(tmp_path, f"{env_name}-consumer", CONSUMER.format(env=env_name))
    outputs, shown = run_deploy(aws, [logs, consumer])
    arn = f"arn:aws:s3:::{env_name}-airflow-logs-123456789012-{REGION}"
    assert outputs["logs"]["LogsBucketArn"] == arn
    assert f"{logs.stack_name}: no changes" in shown
    assert live_status(cf, consumer.stack_name) == "CREATE_COMPLETE"
    assert aws("ssm").get_parameter(Name=f"/{env_name}/logs-bucket-arn")["Parameter"]["Value"] == arn


def test_missing_outputs_after_a_change_set_stop_the_later_stack(aws, repo_root, env_name, tmp_path):
    """Quirk relied on: moto returns no Outputs after execute_change_set, so the consumer's required
    LogsBucketArn has no value: a one-line ConfigError naming the stack, the parameter and logs, the earlier
    stack expected to output it (on AWS this deploy succeeds)."""
    (logs,) = integration_specs(repo_root, env_name, ["logs"])
    consumer = spec_for(tmp_path, f"{env_name}-consumer", CONSUMER.format(env=env_name))
    with pytest.raises(ConfigError) as raised:
        run_deploy(aws, [logs, consumer])
    message = str(raised.value)
    assert "\n" not in message
    assert f"{consumer.name}.LogsBucketArn" in message and "earlier stack logs" in message
    cf = aws("cloudformation")
    assert live_status(cf, logs.stack_name) == "CREATE_COMPLETE"
    assert live_status(cf, consumer.stack_name) is None


# ------------------------------------------------------------------------------- destroy --
def test_destroy_deletes_in_reverse_order_and_skips_missing_stacks(aws, repo_root, env_name):
    """registries then logs are deployed; destroy deletes logs first, then registries, and skips database,
    which never existed. Each confirm sees the stacks after it already gone. (The logs bucket is Retain;
    moto deletes stacks at once, without DELETE_IN_PROGRESS.)"""
    specs = integration_specs(repo_root, env_name, ["registries", "logs"])
    run_deploy(aws, specs)
    cf = aws("cloudformation")
    missing = cfn.StackSpec("database", f"{env_name}-database", specs[0].template, {}, ())
    seen = []

    def confirm(spec) -> bool:
        seen.append((spec.name, [s.name for s in specs if live_status(cf, s.stack_name)]))
        return True

    con, out = console()
    deleted = cfn.destroy(aws("cloudformation"), [*specs, missing], confirm, con, waits=WAITS)
    assert seen == [("logs", ["registries", "logs"]), ("registries", ["registries"])]
    assert deleted == [f"{env_name}-logs", f"{env_name}-registries"]
    assert all(live_status(cf, s.stack_name) is None for s in specs)
    assert f"{env_name}-database: does not exist, skipped" in out.getvalue()


def test_destroy_declined_keeps_the_stack(aws, repo_root, env_name):
    (spec,) = integration_specs(repo_root, env_name, ["registries"])
    run_deploy(aws, [spec])
    con, _ = console()
    with pytest.raises(cfn.DeployError, match="declined"):
        cfn.destroy(aws("cloudformation"), [spec], lambda s: False, con, waits=WAITS)
    assert live_status(aws("cloudformation"), spec.stack_name) == "CREATE_COMPLETE"


def test_a_failed_change_set_raises_its_reason_and_is_deleted(tmp_path):
    """A change set FAILED for another reason than "no changes" (moto only fails change sets for identical
    input, so a Stubber plays CloudFormation): DeployError with the reason; the change set and the empty
    REVIEW_IN_PROGRESS stack of this CREATE are deleted."""
    import boto3
    from botocore.stub import Stubber

    cf = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name=REGION).client(
        "cloudformation", endpoint_url="http://127.0.0.1:9")
    spec = spec_for(tmp_path, "env-logs", BUCKET_TEMPLATE.format(bucket="b"))
    stack_id, change_set_id = "arn:stack/env-logs/1", "arn:changeSet/airstack-x/1"
    reason = "Template format error: Unresolved resource dependencies [Foo] in the Resources block"
    failed = {"ChangeSetId": change_set_id, "StackId": stack_id, "Status": "FAILED", "StatusReason": reason}
    review = {"Stacks": [{"StackId": stack_id, "StackName": "env-logs", "StackStatus": "REVIEW_IN_PROGRESS",
                          "CreationTime": "2026-01-01T00:00:00Z"}]}
    with Stubber(cf) as stub:
        stub.add_client_error("describe_stacks", "ValidationError", "Stack with id env-logs does not exist")
        stub.add_response("create_change_set", {"Id": change_set_id, "StackId": stack_id})
        stub.add_response("describe_change_set", failed)  # the waiter
        stub.add_response("describe_change_set", failed)  # its reason
        stub.add_response("delete_change_set", {}, {"StackName": stack_id, "ChangeSetName": change_set_id})
        stub.add_response("describe_stacks", review)
        stub.add_response("delete_stack", {}, {"StackName": stack_id})
        stub.add_response("describe_stacks", {"Stacks": [{**review["Stacks"][0], "StackStatus": "DELETE_COMPLETE"}]})
        with pytest.raises(cfn.DeployError) as raised:
            cfn.ChangeSets(cf, WAITS).plan(spec, {})
        stub.assert_no_pending_responses()
    assert str(raised.value) == f"env-logs: the change set failed: {reason}"


def test_a_rolled_back_new_stack_says_how_to_delete_it(tmp_path):
    """A stack whose creation failed (ROLLBACK_COMPLETE; moto has no rollback states, so a Stubber plays
    CloudFormation) cannot be updated: no change set is made, and the message gives the delete command."""
    import boto3
    from botocore.stub import Stubber

    cf = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name=REGION).client(
        "cloudformation", endpoint_url="http://127.0.0.1:9")
    spec = spec_for(tmp_path, "env-logs", BUCKET_TEMPLATE.format(bucket="b"))
    with Stubber(cf) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{"StackName": "env-logs", "StackStatus": "ROLLBACK_COMPLETE",
                                                          "CreationTime": "2026-01-01T00:00:00Z"}]})
        with pytest.raises(cfn.DeployError) as raised:
            cfn.ChangeSets(cf, WAITS).plan(spec, {})
        stub.assert_no_pending_responses()
    assert str(raised.value) == (
        "env-logs: its creation failed (ROLLBACK_COMPLETE) and it cannot be updated: delete it (aws cloudformation "
        f"delete-stack --stack-name env-logs --region {REGION}) and deploy again")
