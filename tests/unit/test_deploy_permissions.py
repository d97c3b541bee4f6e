"""The CI roles grant what the deploy calls, and no more where it matters (infra/cloudformation/bootstrap/).

The deploy's AWS calls are derived from the code: an AST walk over airstack/deploy/** finds the services
it makes clients for (``client_factory(...)("svc")``, ``clients("svc")``) and every call of a method that is
one of those services' operations (botocore's service models, snake_case), every waiter (its operation)
and every paginator. Each becomes an IAM action, and the roles' statements (the templates, resolved for
each environment's bootstrap parameters) are evaluated for it on the resources this environment's
deploy.yaml names. A call added later without a grant fails here. Calls made by other programs
(Docker pushing through the ECR credential helper, sops decrypting with KMS) are listed below.
"""

from __future__ import annotations

import ast
import json
from datetime import datetime, timezone
from functools import cache

import pytest
import yaml

from airstack import paths
from airstack.deploy import snapshot
from tests import iam_policy
from tests.iam_policy import ACCOUNT, REGION

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("infra/", "settings/", "airstack/deploy/", "tests/iam_policy.py")

ROOT = paths.repo_root()
BOOTSTRAP = ROOT / "infra" / "cloudformation" / "bootstrap"
DEPLOY = ROOT / "airstack" / "deploy"
# The stand-in deploy (`nox -s ci`): it creates a KMS key and a bucket on the moto server, never in CI's AWS.
STANDINS = {"replay.py"}
ENVIRONMENTS = ("integration", "production")
# IAM actions whose name is not the operation's (the Service Authorization Reference).
IAM_ACTION = {("s3", "ListObjectsV2"): "s3:ListBucket", ("s3", "ListObjects"): "s3:ListBucket",
              ("s3", "HeadObject"): "s3:GetObject", ("s3", "HeadBucket"): "s3:ListBucket",
              ("s3", "DeleteObjects"): "s3:DeleteObject", ("s3", "ListObjectVersions"): "s3:ListBucketVersions"}
# Where an action is needed: previews (pod identities, their S3 prefixes) are integration's; the snapshot before
# a migration is production's. Anything else: both environments.
ONLY = {"eks:": ("integration",), "s3:DeleteObject": ("integration",), "s3:ListBucketVersions": ("integration",),
        "rds:": ("production",)}
# What other programs call with the job's credentials: Docker pushes and pulls through the ECR credential helper
# (push-images, the promotion's copy by digest), sops decrypts production's settings with KMS.
REGISTRY_PUSH = ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
                 "ecr:BatchGetImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
                 "ecr:PutImage"]
REGISTRY_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
# What the deploy asks besides its calls: tagging the snapshot it creates with tags (airstack/deploy/snapshot.py).
IMPLIED = {"production": ["rds:AddTagsToResource"], "integration": ["s3:DeleteObjectVersion"]}


# ------------------------------------------------------------------------ the deploy's calls --
def _services_in(tree: ast.AST) -> set[str]:
    """String arguments of calls to a client factory: ``client_factory(r)("s3")`` or ``clients("eks")``."""
    factories = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                 and ast.unparse(node.value.func).endswith("client_factory") for t in node.targets
                 if isinstance(t, ast.Name)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
            func = node.func
            made = isinstance(func, ast.Call) and ast.unparse(func.func).endswith("client_factory")
            if made or (isinstance(func, ast.Name) and func.id in factories):
                found.add(node.args[0].value)
    return found


@cache
def modules() -> dict[str, ast.AST]:
    return {p.relative_to(ROOT).as_posix(): ast.parse(p.read_text()) for p in sorted(DEPLOY.rglob("*.py"))
            if p.name not in STANDINS}


@cache
def botocore_session():
    import botocore.session

    return botocore.session.get_session()


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case -> OperationName."""
    from botocore import xform_name

    return {xform_name(op): op for op in botocore_session().get_service_model(service).operation_names}


@cache
def waiters(service: str) -> dict[str, str]:
    """snake_case waiter name -> the operation it polls."""
    from botocore import xform_name

    try:
        model = botocore_session().get_waiter_model(service)
    except Exception:  # noqa: BLE001 - a service without waiters
        return {}
    return {xform_name(name): model.get_waiter(name).operation for name in model.waiter_names}


def iam_action(service: str, operation: str) -> str:
    prefix = botocore_session().get_service_model(service).signing_name
    return IAM_ACTION.get((service, operation), f"{prefix}:{operation}")


@cache
def deploy_calls() -> dict[str, set[str]]:
    """IAM action -> where the deploy calls it (``file:line``)."""
    services = set().union(*(_services_in(tree) for tree in modules().values()))
    assert {"cloudformation", "s3", "eks"} <= services, f"the client factory's calls were not found: {services}"
    calls: dict[str, set[str]] = {}
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method, found = node.func.attr, []
            literal = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            if method == "get_waiter" and isinstance(literal, str):
                found = [(s, waiters(s)[literal]) for s in services if literal in waiters(s)]
                assert found, f"{name}:{node.lineno}: waiter {literal} of none of {sorted(services)}"
            elif method == "get_paginator" and isinstance(literal, str):
                found = [(s, operations(s)[literal]) for s in services if literal in operations(s)]
                assert found, f"{name}:{node.lineno}: paginator {literal} of none of {sorted(services)}"
            else:
                found = [(s, operations(s)[method]) for s in services if method in operations(s)]
            assert len(found) <= 1, f"{name}:{node.lineno}: {method} is an operation of {found}: name the client"
            for service, operation in found:
                calls.setdefault(iam_action(service, operation), set()).add(f"{name}:{node.lineno}")
    return calls


def test_the_deploys_calls_are_found():
    """The walk finds the calls this test exists for (a refactoring that hid them would pass everything)."""
    calls = deploy_calls()
    for action in ("cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet",
                   "cloudformation:DescribeChangeSet", "cloudformation:DescribeStackEvents",
                   "s3:GetObject", "s3:PutObject", "eks:CreatePodIdentityAssociation"):
        assert action in calls, f"{action} not found in airstack/deploy/**: {sorted(calls)}"


# ------------------------------------------------------------------------------- the roles --
@cache
def bootstrap(env: str) -> iam_policy.Template:
    params = json.loads((BOOTSTRAP / f"{env}.json").read_text())["Parameters"]
    return iam_policy.Template(iam_policy.load(BOOTSTRAP / "deploy-roles.yaml"), params)


def role(env: str, name: str = "DeployRole") -> iam_policy.Role:
    return bootstrap(env).roles()[name]


@cache
def deploy_yaml(env: str) -> dict:
    return yaml.safe_load((ROOT / "settings" / env / "deploy.yaml").read_text())


def records(env: str) -> tuple[str, str]:
    bucket, _, prefix = deploy_yaml(env)["release"]["records"].removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def stack_arn(env: str, stack: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{deploy_yaml(env)['cloudformation']['stack_prefix']}-" \
           f"{stack}/0a1b2c3d"


def repositories(env: str) -> str:
    return deploy_yaml(env)["images"]["registry"].split("/", 1)[1]


def requests(env: str, action: str) -> list[tuple[str, dict]]:
    """(resource, request context) of each request ``action`` makes in ``env``'s deploy; [] for an action this
    table does not know (then it must be granted on some resource at least)."""
    bucket, prefix = records(env)
    source = (deploy_yaml(env)["release"] or {}).get("promote_from")
    cfn_role = bootstrap(env).roles()["CloudFormationRole"].arn
    cluster = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{env}-airflow"
    previews = [f"arn:aws:s3:::{env}-airflow-{kind}-{ACCOUNT}-{REGION}" for kind in ("logs", "data")]
    snapshot_arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:" + \
        snapshot.snapshot_id(f"{env}-airflow", "0123456789abcdef", datetime(2026, 12, 8, tzinfo=timezone.utc))
    if action.startswith("cloudformation:"):
        context = {"cloudformation:RoleArn": cfn_role} if action == "cloudformation:CreateChangeSet" else {}
        return [(stack_arn(env, s), context) for s in deploy_yaml(env)["cloudformation"]["stacks"]]
    table = {
        "s3:GetObject": [f"arn:aws:s3:::{bucket}/{prefix}/{e}.json" for e in {env, source} - {None}],
        "s3:PutObject": [f"arn:aws:s3:::{bucket}/{prefix}/{env}.json",
                         f"arn:aws:s3:::{bucket}/{prefix}/{env}/abc.json"],
        "s3:ListBucket": [f"arn:aws:s3:::{bucket}"] + (previews if env == "integration" else []),
        "s3:DeleteObject": [f"{b}/previews/airflow-feature-x/logs/a.log" for b in previews],
        "s3:DeleteObjectVersion": [f"{b}/previews/airflow-feature-x/logs/a.log" for b in previews],
        "s3:ListBucketVersions": previews,
        "eks:ListPodIdentityAssociations": [cluster],
        "eks:CreatePodIdentityAssociation": [cluster],
        "eks:TagResource": [cluster],
        "eks:DeletePodIdentityAssociation": [f"arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/"
                                             f"{env}-airflow/a-1234"],
        "rds:CreateDBSnapshot": [f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{env}-airflow", snapshot_arn],
        "rds:DescribeDBSnapshots": [snapshot_arn],
        "rds:AddTagsToResource": [snapshot_arn],
        "rds:DescribeDBInstances": [f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{env}-airflow"],
    }
    listing = {"s3:prefix": "previews/airflow-feature-x/"}
    by_prefix = ("s3:ListBucket", "s3:ListBucketVersions")
    return [(r, listing if action in by_prefix and r in previews else {}) for r in table.get(action, [])]


def needed_in(action: str) -> tuple[str, ...]:
    return next((envs for key, envs in ONLY.items() if action.startswith(key)), ENVIRONMENTS)


def implied(env: str, action: str) -> list[tuple[str, str, dict]]:
    """Requests AWS makes of the caller besides the action itself: passing a role, tagging."""
    if action == "cloudformation:CreateChangeSet":
        return [("iam:PassRole", bootstrap(env).roles()["CloudFormationRole"].arn,
                 {"iam:PassedToService": "cloudformation.amazonaws.com"})]
    if action == "eks:CreatePodIdentityAssociation":  # with tags; the role is cluster.yaml's PreviewRole
        stack = deploy_yaml(env)["cloudformation"]["stack_prefix"]
        return [("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{stack}-cluster-PreviewRole-AbC123",
                 {"iam:PassedToService": "pods.eks.amazonaws.com"}),
                ("eks:TagResource", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{env}-airflow", {})]
    return []


def every_action(env: str) -> dict[str, set[str]]:
    actions = {a: where for a, where in deploy_calls().items() if env in needed_in(a)}
    for action in IMPLIED[env]:
        actions.setdefault(action, {"what the deploy's calls imply (tags on create, versions deleted)"})
    return actions


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_deploy_role_grants_every_call_of_the_deploy(env):
    deploy = role(env)
    missing = []
    for action, where in sorted(every_action(env).items()):
        wanted = requests(env, action)
        if not wanted:  # a call this test has no resource for: granted somewhere, at least
            if not any(iam_policy._glob(a, action, False) for s in deploy.statements if s["Effect"] == "Allow"
                       for a in iam_policy.as_list(s.get("Action", []))):
                missing.append(f"{action} (called at {', '.join(sorted(where))})")
            continue
        for resource, context in wanted:
            for act, res, ctx in [(action, resource, context), *implied(env, action)]:
                if not deploy.allows(act, res, ctx):
                    missing.append(f"{act} on {res} {ctx or ''} (for {action} at {', '.join(sorted(where))})")
    assert not missing, f"{env}'s deploy role lacks:\n" + "\n".join(missing)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_images_push_to_their_own_registry_and_production_pulls_integrations(env):
    deploy, own = role(env), repositories(env)
    for action in REGISTRY_PUSH:
        resource = "*" if action == "ecr:GetAuthorizationToken" else \
            f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{own}/airflow"
        assert deploy.allows(action, resource), f"{env}: {action} on {resource}"
    other = repositories("integration" if env == "production" else "production")
    source = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{other}/airflow"
    assert deploy.allows("ecr:PutImage", source) is False, f"{env} pushes into the other environment's registry"
    assert all(deploy.allows(a, source) for a in REGISTRY_PULL) == (env == "production"), \
        "production copies integration's images by digest; integration pulls nothing of production's"


def test_production_decrypts_its_settings_with_its_sops_key_only():
    alias = "alias/airflow-production-sops"
    sops = yaml.safe_load((ROOT / ".sops.yaml").read_text())
    kms = [k["arn"] for rule in sops["creation_rules"] if "production" in rule["path_regex"]
           for group in rule["key_groups"] for k in group.get("kms", [])]
    assert kms and all(a.endswith(alias) for a in kms), kms
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert role("production").allows("kms:Decrypt", key, {"kms:ResourceAliases": [alias]})
    assert not role("production").allows("kms:Decrypt", key, {"kms:ResourceAliases": ["alias/other"]})
    assert not role("integration").allows("kms:Decrypt", key, {"kms:ResourceAliases": [alias]})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_change_sets_only_with_the_cloudformation_role_and_only_on_the_environments_stacks(env):
    deploy, other = role(env), "production" if env == "integration" else "integration"
    cfn_role = bootstrap(env).roles()["CloudFormationRole"].arn
    assert not deploy.allows("cloudformation:CreateChangeSet", stack_arn(env, "network"), {})
    assert not deploy.allows("cloudformation:CreateChangeSet", stack_arn(other, "network"),
                             {"cloudformation:RoleArn": cfn_role})
    assert not deploy.allows("iam:PassRole", cfn_role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not deploy.allows("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/anything")


# --------------------------------------------------------------------------- who may assume --
def token(env: str, ref: str, project: str | None = None) -> dict:
    params = json.loads((BOOTSTRAP / f"{env}.json").read_text())["Parameters"]
    org, origin = params["CircleCIOrganizationId"], params["VcsOrigin"]
    sub = f"org/{org}/project/{project or params['CircleCIProjectId']}/user/5e3a/vcs-origin/{origin}/vcs-ref/{ref}"
    return {f"oidc.circleci.com/org/{org}:sub": sub, f"oidc.circleci.com/org/{org}:aud": org}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_roles_trust_main_of_this_project_only(env):
    assume = "sts:AssumeRoleWithWebIdentity"
    assert role(env).trusts(assume, token(env, "refs/heads/main"))
    assert not role(env).trusts(assume, token(env, "refs/heads/feature/x"))
    assert not role(env).trusts(assume, token(env, "refs/heads/main", project="00000000-0000-4000-8000-0000000000ff"))
    assert not role(env).trusts(assume, {k: v.replace("example-org", "fork-org") for k, v in
                                         token(env, "refs/heads/main").items()})
    assert not role(env).trusts(assume, {**token(env, "refs/heads/main"),
                                         next(k for k in token(env, "x") if k.endswith(":aud")): "another-audience"})
    origin = json.loads((BOOTSTRAP / f"{env}.json").read_text())["Parameters"]["VcsOrigin"]
    crafted = f"refs/heads/x/vcs-origin/{origin}/vcs-ref/refs/heads/main"  # a branch name that ends like main's sub
    assert iam_policy._glob("*/vcs-ref/refs/heads/main", next(iter(token(env, crafted).values())), True), \
        "the crafted sub does end like main's: the test would prove nothing otherwise"
    assert not role(env).trusts(assume, token(env, crafted))


def test_branches_get_the_preview_role_which_cannot_write_records_nor_touch_stacks():
    preview, assume = role("integration", "PreviewDeployRole"), "sts:AssumeRoleWithWebIdentity"
    assert preview.trusts(assume, token("integration", "refs/heads/feature/x"))
    assert "PreviewDeployRole" not in bootstrap("production").roles(), "production has no branch deploys"
    bucket, prefix = records("integration")
    assert preview.allows("s3:GetObject", f"arn:aws:s3:::{bucket}/{prefix}/integration.json")
    for env in ENVIRONMENTS:
        for key in (f"{env}.json", f"{env}/abc.json"):
            for action in ("s3:PutObject", "s3:DeleteObject"):
                assert not preview.allows(action, f"arn:aws:s3:::{bucket}/{prefix}/{key}")
    assert not preview.allows("cloudformation:CreateChangeSet", stack_arn("integration", "cluster"),
                              {"cloudformation:RoleArn": bootstrap("integration").roles()["CloudFormationRole"].arn})
    assert preview.allows("cloudformation:DescribeStacks", stack_arn("integration", "cluster"))  # its outputs
    for action in ("eks:ListPodIdentityAssociations", "eks:CreatePodIdentityAssociation"):
        assert preview.allows(action, f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/integration-airflow")
    for action, resource, context in implied("integration", "eks:CreatePodIdentityAssociation"):
        assert preview.allows(action, resource, context)
    assert all(preview.allows(a, "*" if a == "ecr:GetAuthorizationToken" else
                              f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{repositories('integration')}/airflow")
               for a in REGISTRY_PUSH), "branches push integration's images (build-images)"


def test_each_deploy_role_writes_its_own_record_only():
    bucket, prefix = records("production")
    assert records("integration") == (bucket, prefix), "both environments keep records in one place"
    for env in ENVIRONMENTS:
        other = "production" if env == "integration" else "integration"
        deploy = role(env)
        for key in (f"{env}.json", f"{env}/abc.json"):
            assert deploy.allows("s3:PutObject", f"arn:aws:s3:::{bucket}/{prefix}/{key}")
        for key in (f"{other}.json", f"{other}/abc.json"):
            assert deploy.allows("s3:GetObject", f"arn:aws:s3:::{bucket}/{prefix}/{key}")
            assert not deploy.allows("s3:PutObject", f"arn:aws:s3:::{bucket}/{prefix}/{key}"), \
                f"{env}'s deploy may rewrite {other}'s record"
        assert not deploy.allows("s3:PutObject", f"arn:aws:s3:::{bucket}/data/anything")


# ------------------------------------------------------------------ integration's Airflow pods --
@cache
def cluster(env: str) -> iam_policy.Template:
    params = yaml.safe_load((ROOT / "infra/cloudformation/parameters" / f"{env}.yaml").read_text())["cluster"]
    data = f"arn:aws:s3:::{env}-airflow-data-{ACCOUNT}-{REGION}"
    logs = f"arn:aws:s3:::{env}-airflow-logs-{ACCOUNT}-{REGION}"
    fed = {"PrivateSubnetIds": "subnet-1,subnet-2", "LogsBucketArn": logs, "DataBucketArn": data}
    return iam_policy.Template(iam_policy.load(ROOT / "infra/cloudformation/cluster.yaml"), {**params, **fed})


@pytest.mark.parametrize("pod_role", ["AirflowRole", "PreviewRole"])
def test_integrations_airflow_pods_read_but_never_write_the_release_records(pod_role):
    """DAG code runs with these roles, and production promotes from integration's record."""
    bucket, prefix = records("integration")
    assert bucket == f"integration-airflow-data-{ACCOUNT}-{REGION}", "the records live in integration's data bucket"
    template = cluster("integration")
    assert template.values["ReleaseRecordsPrefix"] == prefix, "cluster.yaml's records prefix is deploy.yaml's"
    pods = template.roles(stack="airflow-integration-cluster")[pod_role]
    tag = {"aws:PrincipalTag/kubernetes-namespace": "airflow-feature-x"}
    for key in ("integration.json", "integration/abc.json", "production.json"):
        record = f"arn:aws:s3:::{bucket}/{prefix}/{key}"
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl",
                       "s3:RestoreObject"):
            assert not pods.allows(action, record, tag), f"{pod_role} may {action} {record}"
    if pod_role == "AirflowRole":
        assert pods.allows("s3:GetObject", f"arn:aws:s3:::{bucket}/{prefix}/integration.json")
        assert pods.allows("s3:PutObject", f"arn:aws:s3:::{bucket}/data/task/output.parquet"), \
            "task data is still writable"
        assert pods.allows("s3:PutObject", f"arn:aws:s3:::{bucket}/releases-notes/x"), "only the prefix is closed"
    else:
        assert pods.allows("s3:PutObject", f"arn:aws:s3:::{bucket}/previews/airflow-feature-x/data/x", tag)
