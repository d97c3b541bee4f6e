"""The CloudFormation stacks of infra/cloudformation/ deployed through change sets on the moto server, in
the deploy order (test_cloudformation_templates.STACKS), with an environment's parameters.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest

from tests.deploy.test_cloudformation_templates import (REGION, STACKS, cfn_dir, image_folders, load_template,
                                                        parameter_files, templates)

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("infra/", "settings/")

__all__ = ["parameter_files", "templates"]  # fixtures used here


# ------------------------------------------------------------------------------ moto deploy --
@dataclass
class MotoDeployment:
    """The stacks of one environment deployed on the moto server, in deploy order."""

    env_name: str
    session: object
    endpoint: str
    planned: dict[str, dict[str, str]] = field(default_factory=dict)  # stack -> {logical id: action}
    status: dict[str, str] = field(default_factory=dict)
    fed: dict[str, str] = field(default_factory=dict)  # the outputs real CloudFormation would return

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint)

    def stack_name(self, stack: str) -> str:
        return f"{self.env_name}-{stack}"

    def physical_id(self, stack: str, logical_id: str) -> str:
        """(Moto can answer describe_stack_resource with an HTTP 500 when the stack holds a resource it
        skipped, and lists skipped resources without a LogicalResourceId: hence the listing and the .get.)"""
        listing = self.client("cloudformation").describe_stack_resources(StackName=self.stack_name(stack))
        (resource,) = [r for r in listing["StackResources"] if r.get("LogicalResourceId") == logical_id]
        return resource["PhysicalResourceId"]


def deploy_through_change_set(cloudformation, stack_name: str, body: str, parameters: dict) -> tuple[dict, str]:
    """create_change_set (CREATE), wait, execute, wait: the planned {logical id: action} and the stack status."""
    change_set = f"{stack_name}-create"
    cloudformation.create_change_set(
        StackName=stack_name, ChangeSetName=change_set, ChangeSetType="CREATE", TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"])
    fast = {"Delay": 1, "MaxAttempts": 60}
    cloudformation.get_waiter("change_set_create_complete").wait(
        StackName=stack_name, ChangeSetName=change_set, WaiterConfig=fast)
    changes = cloudformation.describe_change_set(StackName=stack_name, ChangeSetName=change_set)["Changes"]
    planned = {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"]["Action"] for c in changes}
    cloudformation.execute_change_set(StackName=stack_name, ChangeSetName=change_set)
    cloudformation.get_waiter("stack_create_complete").wait(StackName=stack_name, WaiterConfig=fast)
    return planned, cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]


def network_outputs(ec2, env_name: str) -> dict[str, str]:
    """The network stack's outputs, read back from EC2 by the tags the template sets."""
    tagged = [{"Name": "tag:Environment", "Values": [env_name]}]
    (vpc,) = ec2.describe_vpcs(Filters=tagged)["Vpcs"]
    subnets = ec2.describe_subnets(Filters=tagged + [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]

    def tier(name: str) -> str:
        chosen = [s for s in subnets if {"Key": "Tier", "Value": name} in s["Tags"]]
        return ",".join(s["SubnetId"] for s in sorted(chosen, key=lambda s: s["CidrBlock"]))

    return {"VpcId": vpc["VpcId"], "VpcCidr": vpc["CidrBlock"],
            "PublicSubnetIds": tier("public"), "PrivateSubnetIds": tier("private")}


@pytest.fixture(scope="module")
def moto_deployment(repo_root, moto_endpoint, parameter_files) -> MotoDeployment:
    """All six stacks of the integration environment, deployed in order through change sets on moto.

    Moto quirks relied on (DESIGN.md): a stack has NO Outputs after execute_change_set, so the outputs
    later stacks need are read back instead (VpcId, VpcCidr and subnet ids from ec2.describe_vpcs /
    describe_subnets filtered by the Environment and Tier tags; LogsBucketArn and DataBucketArn from the
    LogsBucket and DataBucket stack resources); ElastiCache and EKS resources are skipped silently, so
    broker and cluster complete without them. The moto server is shared by the test session: the
    EnvironmentName (and the ECR RepositoryPrefix) are made unique so that names (buckets, DB instance,
    repositories) never collide.
    Module-scoped so the per-stack tests share one deploy: its boto3 clients point at moto_endpoint
    directly, since aws_env (environment variables) is per test.
    """
    import boto3

    env_name = f"cfn{uuid.uuid4().hex[:8]}"
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    deployment = MotoDeployment(env_name, session, moto_endpoint)
    overrides = {"EnvironmentName": env_name, "RepositoryPrefix": f"airflow-{env_name}"}
    cloudformation = deployment.client("cloudformation")
    for stack in STACKS:
        path = cfn_dir(repo_root) / f"{stack}.yaml"
        declared = load_template(path).get("Parameters", {})
        values = {**deployment.fed, **parameter_files["integration"].get(stack, {}), **overrides}
        parameters = {k: v for k, v in values.items() if k in declared}
        deployment.planned[stack], deployment.status[stack] = deploy_through_change_set(
            cloudformation, deployment.stack_name(stack), path.read_text(), parameters)
        if stack == "network":
            deployment.fed.update(network_outputs(deployment.client("ec2"), env_name))
            given = parameter_files["integration"]["network"]
            deployment.fed["PrivateSubnetCidrs"] = f"{given['PrivateSubnet1Cidr']},{given['PrivateSubnet2Cidr']}"
        if stack == "logs":
            deployment.fed["LogsBucketArn"] = f"arn:aws:s3:::{deployment.physical_id('logs', 'LogsBucket')}"
            deployment.fed["DataBucketArn"] = f"arn:aws:s3:::{deployment.physical_id('logs', 'DataBucket')}"
    return deployment


@pytest.mark.parametrize("stack", STACKS)
def test_moto_change_set_plans_every_resource(moto_deployment, templates, stack):
    """Each stack's CREATE change set adds every resource of its template, and the stack completes."""
    assert moto_deployment.planned[stack] == {name: "Add" for name in templates[stack]["Resources"]}
    assert moto_deployment.status[stack] == "CREATE_COMPLETE"


def test_moto_network(moto_deployment, parameter_files):
    """The VPC and subnets over two AZs, the bastion in a public subnet, its group admitting only VpnCidr.
    (Moto's AWS::EC2::Instance ignores SecurityGroupIds and puts the instance in the VPC's default group:
    the bastion's group is checked as a stack resource.)"""
    given = parameter_files["integration"]["network"]
    ec2 = moto_deployment.client("ec2")
    fed = moto_deployment.fed
    assert fed["VpcCidr"] == given["VpcCidr"]
    public, private = fed["PublicSubnetIds"].split(","), fed["PrivateSubnetIds"].split(",")
    subnets = ec2.describe_subnets(SubnetIds=public + private)["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets if s["SubnetId"] in public}) == 2
    assert len({s["AvailabilityZone"] for s in subnets if s["SubnetId"] in private}) == 2

    bastion_id = moto_deployment.physical_id("network", "Bastion")
    (instance,) = ec2.describe_instances(InstanceIds=[bastion_id])["Reservations"][0]["Instances"]
    assert instance["SubnetId"] in public
    group_id = moto_deployment.physical_id("network", "BastionSecurityGroup")
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    permissions = group["IpPermissions"]
    assert {(p["IpProtocol"], p["FromPort"]) for p in permissions} == {("tcp", 22), ("udp", 1194)}
    for permission in permissions:
        assert permission["IpRanges"] == [{"CidrIp": given["VpnCidr"]}], permission
        assert not permission["Ipv6Ranges"] and not permission["UserIdGroupPairs"], permission


def test_moto_registries(moto_deployment, repo_root):
    """Every image folder has its repository. (Moto's CloudFormation drops ScanOnPush and the lifecycle
    policy, so those are checked on the template only.)"""
    prefix = f"airflow-{moto_deployment.env_name}"
    expected = [f"{prefix}/{image}" for image in image_folders(repo_root)]
    found = moto_deployment.client("ecr").describe_repositories(repositoryNames=expected)["repositories"]
    assert sorted(r["repositoryName"] for r in found) == expected
    assert all(r["imageTagMutability"] == "IMMUTABLE" for r in found)


@pytest.mark.parametrize(("logical_id", "kind"), [("LogsBucket", "logs"), ("DataBucket", "data")])
def test_moto_logs(moto_deployment, logical_id, kind):
    """Both buckets exist, encrypted, named as deploy.yaml expects (moto's account is 123456789012).
    (Moto's CloudFormation drops the public access block, lifecycle, versioning, ownership controls and
    skips AWS::S3::BucketPolicy: those are checked by cfn-lint only.)"""
    bucket = moto_deployment.physical_id("logs", logical_id)
    assert bucket == f"{moto_deployment.env_name}-airflow-{kind}-123456789012-{REGION}"
    rules = moto_deployment.client("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_moto_database(moto_deployment):
    """Postgres, encrypted, private, in the private subnets, behind a group that admits 5432 from the private
    subnets only (the nodes and their pods), not from the whole VPC (the public subnets' bastion and NAT).
    (Moto skips AWS::SecretsManager::Secret and does not resolve the dynamic reference, and its DBInstance
    ignores VPCSecurityGroups: the group is checked as a stack resource.)"""
    rds, ec2, fed = moto_deployment.client("rds"), moto_deployment.client("ec2"), moto_deployment.fed
    identifier = moto_deployment.physical_id("database", "DBInstance")
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    assert instance["Engine"] == "postgres"
    assert (instance["StorageEncrypted"], instance["PubliclyAccessible"]) == (True, False)
    assert instance["DeletionProtection"] is False  # integration's DBDeletionProtection
    subnet_ids = {s["SubnetIdentifier"] for s in instance["DBSubnetGroup"]["Subnets"]}
    assert subnet_ids == set(fed["PrivateSubnetIds"].split(","))
    group_id = moto_deployment.physical_id("database", "DBSecurityGroup")
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["VpcId"] == fed["VpcId"]
    private = [{"CidrIp": c} for c in fed["PrivateSubnetCidrs"].split(",")]
    rules = [(p["IpProtocol"], p["FromPort"], p["ToPort"], sorted(p["IpRanges"], key=str))
             for p in group["IpPermissions"]]
    assert rules == [("tcp", 5432, 5432, sorted(private, key=str))]


def test_moto_broker(moto_deployment):
    """Moto skips AWS::ElastiCache::* silently: the change set plans them (checked above) and only the
    security group is created; it admits 6379 from the private subnets only."""
    assert {"Broker", "BrokerSubnetGroup"} <= set(moto_deployment.planned["broker"])
    group_id = moto_deployment.physical_id("broker", "BrokerSecurityGroup")
    (group,) = moto_deployment.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    private = [{"CidrIp": c} for c in moto_deployment.fed["PrivateSubnetCidrs"].split(",")]
    assert [(p["IpProtocol"], p["FromPort"], sorted(p["IpRanges"], key=str)) for p in group["IpPermissions"]] == [
        ("tcp", 6379, sorted(private, key=str))]


def test_moto_cluster(moto_deployment):
    """Moto skips AWS::EKS::* silently: the change set plans them (checked above) and only the IAM roles
    are created, each trusting the service that assumes it."""
    assert {"Cluster", "NodeGroup", "PodIdentityAgent"} <= set(moto_deployment.planned["cluster"])
    iam = moto_deployment.client("iam")
    trusted = {"ClusterRole": "eks.amazonaws.com", "NodeRole": "ec2.amazonaws.com",
               "AirflowRole": "pods.eks.amazonaws.com", "PreviewRole": "pods.eks.amazonaws.com"}
    for logical_id, service in trusted.items():
        role = iam.get_role(RoleName=moto_deployment.physical_id("cluster", logical_id))["Role"]
        document = role["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        assert [s["Principal"] for s in document["Statement"]] == [{"Service": service}], logical_id
