"""The CI roles' bootstrap stack (infra/cloudformation/bootstrap/deploy-roles.yaml) deploys through the deploy's
own change sets on the moto server, and the policies IAM then holds are the statements the permission tests
evaluate (tests/unit/test_deploy_permissions.py resolves the template itself: this checks that resolution
against CloudFormation's, as moto performs it).

Moto quirks relied on: it creates IAM roles, their inline policies and AWS::IAM::Policy resources from a
template, but an Fn::If to AWS::NoValue in a role's Policies list breaks it (hence the conditional Policy
resources), it has no AWS::IAM::RolePolicy nor AWS::IAM::OIDCProvider (skipped), and it returns a template
role's inline policy as the Python repr of the document. Moto enforces no IAM policy: what the statements
allow is judged by the permission tests, not here.
"""

from __future__ import annotations

import ast
import json
from urllib.parse import unquote

import pytest

from airstack.deploy import cloudformation as cfn
from airstack.deploy.aws import client_factory
from tests import iam_policy

REGION = "eu-west-1"
pytestmark = pytest.mark.filterwarnings(r"ignore:Tried to parse AWS..IAM..OIDCProvider:UserWarning")


def document(value) -> dict:
    """A policy document as IAM returns it: URL-encoded JSON, or (moto, a template role's inline policy) the
    Python repr of the parsed document."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(unquote(value))
    except ValueError:
        return ast.literal_eval(value)


@pytest.mark.parametrize("env", ["integration", "production"])
def test_the_bootstrap_stack_creates_the_roles_the_permission_tests_evaluate(aws_env, repo_root, env):
    folder = repo_root / "infra" / "cloudformation" / "bootstrap"
    params = json.loads((folder / f"{env}.json").read_text())["Parameters"]
    template = folder / "deploy-roles.yaml"
    spec = cfn.StackSpec("deploy-roles", f"airstack-ci-{env}", template, {},
                         cfn.capabilities_of(cfn.load_template(template)))
    assert "CAPABILITY_NAMED_IAM" in spec.capabilities
    clients = client_factory(REGION)
    changes = cfn.ChangeSets(clients("cloudformation"), cfn.Waits(change_set_delay=0.2, stack_delay=0.2))
    changes.execute(changes.plan(spec, params))
    account = clients("sts").get_caller_identity()["Account"]

    evaluated = iam_policy.Template(iam_policy.load(template), params).roles()
    iam = clients("iam")
    names = {"DeployRole": "deploy", "PreviewDeployRole": "preview", "CloudFormationRole": "cloudformation"}
    assert set(evaluated) == {k for k in names if env == "integration" or k != "PreviewDeployRole"}
    for logical_id, role in evaluated.items():
        name = f"airstack-ci-{env}-{names[logical_id]}"
        assert role.arn.rsplit("/", 1)[1] == name
        created = iam.get_role(RoleName=name)["Role"]
        trust = document(created["AssumeRolePolicyDocument"])["Statement"]
        assert json.dumps(trust).replace(account, iam_policy.ACCOUNT) == json.dumps(role.trust)
        statements = []
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            body = document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
            statements += iam_policy.as_list(body["Statement"])
        shown = json.dumps(statements, sort_keys=True).replace(account, iam_policy.ACCOUNT)
        assert shown == json.dumps(role.statements, sort_keys=True), f"{name}: IAM holds other statements"
