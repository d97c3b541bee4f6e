"""CI deploys the stacks through CloudFormation's service role (AIRSTACK_CFN_ROLE_ARN, the bootstrap stack's
CloudFormationRole): its deploy role may create change sets only with that role. On the moto server."""

from __future__ import annotations

import uuid

import pytest

from airstack.deploy import cloudformation as cfn
from airstack.deploy.aws import client_factory
from airstack.deploy.cloudformation.changesets import ROLE_ENV

REGION = "eu-west-1"
TEMPLATE = """AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""


def plan_and_execute(tmp_path, stack: str) -> dict:
    path = tmp_path / f"{stack}.yaml"
    path.write_text(TEMPLATE)
    spec = cfn.StackSpec(stack, stack, path, {}, cfn.capabilities_of(cfn.load_template(path)))
    cf = client_factory(REGION)("cloudformation")
    changes = cfn.ChangeSets(cf, cfn.Waits(change_set_delay=0.2, stack_delay=0.2))
    plan = changes.plan(spec, {})
    changes.execute(plan)
    return cf.describe_stacks(StackName=stack)["Stacks"][0]


@pytest.mark.parametrize("role", [None, "arn:aws:iam::123456789012:role/airstack-ci-integration-cloudformation"])
def test_change_sets_use_the_cloudformation_role_when_given(aws_env, monkeypatch, tmp_path, role):
    if role:
        monkeypatch.setenv(ROLE_ENV, role)
    else:
        monkeypatch.delenv(ROLE_ENV, raising=False)
    stack = plan_and_execute(tmp_path, f"t{uuid.uuid4().hex[:10]}-topic")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack.get("RoleARN") == role
