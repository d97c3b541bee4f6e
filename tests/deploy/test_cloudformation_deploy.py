"""The CloudFormation deploy engine (airstack.deploy.cloudformation): its client, loading the stacks and resolving
their parameters; the helpers of its moto tests (test_cloudformation_changesets.py, where moto's quirks are listed).
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from airstack.deploy import cloudformation as cfn
from airstack.deploy.aws import client_factory
from airstack.errors import ConfigError

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("infra/",)

REGION = "eu-west-1"
WAITS = cfn.Waits(change_set_delay=0.2, change_set_attempts=50, stack_delay=0.2, stack_attempts=50)
INTEGRATION = Path("infra/cloudformation/parameters/integration.yaml")

pytestmark = pytest.mark.filterwarnings(
    r"ignore:Tried to parse AWS..S3..BucketPolicy but it's not supported by moto:UserWarning")


# -------------------------------------------------------------------------------- helpers --
@pytest.fixture
def aws(aws_env):
    """A client factory pointed at the moto server."""
    return client_factory(REGION, aws_env)


@pytest.fixture
def env_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def console() -> tuple[object, io.StringIO]:
    from rich.console import Console

    out = io.StringIO()
    return Console(file=out, width=200, color_system=None, force_terminal=False), out


def integration_specs(repo_root: Path, env_name: str, names=("registries", "logs")) -> list[cfn.StackSpec]:
    """The integration environment's stacks, made unique on the shared moto server."""
    specs = cfn.load_stacks(repo_root, list(names), repo_root / INTEGRATION, env_name)
    for spec in specs:
        spec.parameters["EnvironmentName"] = env_name
        if "RepositoryPrefix" in spec.parameters:
            spec.parameters["RepositoryPrefix"] = f"airflow-{env_name}"
    return specs


def yes(spec, plan) -> bool:
    return True


def refuse(spec, plan) -> bool:
    raise AssertionError(f"confirm called for {spec.stack_name} although nothing changes")


def run_deploy(aws, specs, confirm=yes, dry_run=False):
    con, out = console()
    outputs = cfn.deploy(aws("cloudformation"), specs, confirm=confirm, dry_run=dry_run, console=con, waits=WAITS)
    return outputs, out.getvalue()


def unexecuted_change_sets(cf, stack_name: str) -> list[dict]:
    """Change sets not executed. (Moto keeps executed ones listed as EXECUTE_COMPLETE; AWS drops them.)"""
    try:
        summaries = cf.list_change_sets(StackName=stack_name)["Summaries"]
    except Exception:  # noqa: BLE001 - no such stack: no change sets
        return []
    return [s for s in summaries if s.get("ExecutionStatus") != "EXECUTE_COMPLETE"]


def live_status(cf, stack_name: str) -> str | None:
    stack = cfn.ChangeSets(cf).describe_stack(stack_name)
    return stack["StackStatus"] if stack else None


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def spec_for(tmp_path: Path, stack_name: str, body: str, parameters: dict | None = None) -> cfn.StackSpec:
    template = write(tmp_path / f"{stack_name}.yaml", body)
    return cfn.StackSpec(stack_name, stack_name, template, dict(parameters or {}),
                         cfn.capabilities_of(cfn.load_template(template)))


# ------------------------------------------------------------------------------ aws.py --
def test_client_factory_retries_and_endpoint(aws_env):
    """The clients use botocore's standard retry mode with max_attempts 10 (botocore stores it as 11 total
    attempts: the first call and 10 retries) and talk to the endpoint given (moto answers list_stacks)."""
    factory = client_factory(REGION, aws_env)
    cf = factory("cloudformation")
    assert cf.meta.config.retries == {"mode": "standard", "total_max_attempts": 11}
    assert cf.meta.endpoint_url == aws_env
    assert cf.meta.region_name == REGION
    assert factory("cloudformation") is cf
    assert "StackSummaries" in cf.list_stacks()


# ------------------------------------------------------------------------ load_stacks --
def test_load_stacks_reads_the_integration_parameters(repo_root):
    """Every value is a string (YAML ints included); IAM capabilities come from the templates' resources."""
    names = ["network", "registries", "logs", "database", "broker", "cluster"]
    specs = cfn.load_stacks(repo_root, names, repo_root / INTEGRATION, "airflow-integration")
    assert [s.stack_name for s in specs] == [f"airflow-integration-{n}" for n in names]
    assert all(isinstance(v, str) for s in specs for v in s.parameters.values())
    by_name = {s.name: s for s in specs}
    assert by_name["registries"].parameters["TaggedImagesToKeep"] == "20"
    assert by_name["database"].parameters["DBMultiAZ"] == "false"
    assert {s.name: s.capabilities for s in specs if s.capabilities} == {
        "network": ("CAPABILITY_IAM",), "cluster": ("CAPABILITY_IAM",)}
    assert by_name["network"].template == repo_root / "infra/cloudformation/network.yaml"


def test_capabilities_of_named_iam_and_macros():
    assert cfn.capabilities_of({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}},
                                "Transform": "AWS::Serverless-2016-10-31"}) == (
        "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
    assert cfn.capabilities_of({"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}) == ()


TEMPLATE = """\
Parameters:
  EnvironmentName: {Type: String}
  VpnCidr: {Type: String}
Resources:
  Topic: {Type: AWS::SNS::Topic, Properties: {TopicName: !Sub "${EnvironmentName}-t"}}
"""


@pytest.mark.parametrize(("parameters", "template", "names", "expected"), [
    ("network:\n  VpnCidrr: 10.0.0.0/24\n", TEMPLATE, ["network"],
     "infra/cloudformation/parameters/integration.yaml: network.VpnCidrr: not a parameter of "
     "infra/cloudformation/network.yaml"),
    ("- network\n", TEMPLATE, ["network"],
     "infra/cloudformation/parameters/integration.yaml: (top level): must map stack names to "
     "{ParameterKey: value}, not list"),
    ("network:\n  VpnCidr: [unclosed\n", TEMPLATE, ["network"],
     "infra/cloudformation/parameters/integration.yaml: invalid YAML: line 3, column 1:"),
    ("network: {}\n", TEMPLATE, ["cluster"], "infra/cloudformation/cluster.yaml: no such template"),
    ("netwrok: {}\n", TEMPLATE, ["network"],
     "infra/cloudformation/parameters/integration.yaml: netwrok: no such stack"),
    ("network:\n  VpnCidr: true\n", TEMPLATE, ["network"],
     'infra/cloudformation/parameters/integration.yaml: network.VpnCidr: quote booleans ("true")'),
    ("network:\n  VpnCidr:\n", TEMPLATE, ["network"],
     "infra/cloudformation/parameters/integration.yaml: network.VpnCidr: must be a string or a number"),
    ("network: [a]\n", TEMPLATE, ["network"],
     "infra/cloudformation/parameters/integration.yaml: network: must be a mapping"),
    ("network: {}\n", "Resources: [\n", ["network"], "infra/cloudformation/network.yaml: invalid YAML:"),
    ("network: {}\n", "Parameters: {}\n", ["network"],
     "infra/cloudformation/network.yaml: Resources: a template needs a Resources mapping"),
], ids=["unknown-key", "not-a-mapping", "yaml-error", "missing-template", "unknown-stack", "unquoted-bool",
        "null-value", "stack-not-a-mapping", "template-yaml-error", "template-without-resources"])
def test_load_stacks_bad_input(tmp_path, parameters, template, names, expected):
    """Each problem is one ConfigError line naming the file (relative to the root) and the field."""
    write(tmp_path / "infra/cloudformation/network.yaml", template)
    params = write(tmp_path / INTEGRATION, parameters)
    with pytest.raises(ConfigError) as raised:
        cfn.load_stacks(tmp_path, names, params, "airflow-integration")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(expected), message


def test_load_stacks_missing_parameters_file(tmp_path):
    write(tmp_path / "infra/cloudformation/network.yaml", TEMPLATE)
    with pytest.raises(ConfigError, match=r"^infra/cloudformation/parameters/integration.yaml: no such"):
        cfn.load_stacks(tmp_path, ["network"], tmp_path / INTEGRATION, "x")


# ------------------------------------------------------------------ resolve_parameters --
DECLARED = {"EnvironmentName": {"Type": "String"}, "LogsBucketArn": {"Type": "String"},
            "NodeMinSize": {"Type": "Number", "Default": 1}}


def cluster_spec(parameters: dict) -> cfn.StackSpec:
    return cfn.StackSpec("cluster", "airflow-integration-cluster", Path("cluster.yaml"), parameters, (),
                         "infra/cloudformation/parameters/integration.yaml")


def test_resolve_the_file_value_wins_over_an_output():
    spec = cluster_spec({"EnvironmentName": "integration", "LogsBucketArn": "arn:from-file"})
    outputs = {"logs": {"LogsBucketArn": "arn:from-output", "EnvironmentName": "other"}}
    assert cfn.resolve_parameters(spec, DECLARED, outputs) == {
        "EnvironmentName": "integration", "LogsBucketArn": "arn:from-file"}


def test_resolve_an_output_fills_a_parameter_the_file_does_not_give():
    """Outputs fill required parameters and parameters with a default alike; a later stack's output wins;
    outputs that are no parameter of the template are left out."""
    spec = cluster_spec({"EnvironmentName": "integration"})
    outputs = {"network": {"VpcId": "vpc-1", "NodeMinSize": "2"}, "logs": {"LogsBucketArn": "arn:aws:s3:::b"}}
    assert cfn.resolve_parameters(spec, DECLARED, outputs) == {
        "EnvironmentName": "integration", "LogsBucketArn": "arn:aws:s3:::b", "NodeMinSize": "2"}


def test_resolve_a_missing_required_parameter_names_stack_parameter_and_earlier_stack():
    spec = cluster_spec({"EnvironmentName": "integration"})
    with pytest.raises(cfn.UnresolvedParameterError) as raised:
        cfn.resolve_parameters(spec, DECLARED, {"network": {"VpcId": "vpc-1"}},
                               expected_from={"LogsBucketArn": "logs", "VpcId": "network"})
    message = str(raised.value)
    assert isinstance(raised.value, ConfigError) and "\n" not in message
    assert message.startswith("infra/cloudformation/parameters/integration.yaml: cluster.LogsBucketArn: ")
    assert "earlier stack logs" in message
    assert (raised.value.stack, raised.value.parameter, raised.value.expected_from) == (
        "cluster", "LogsBucketArn", "logs")


def test_resolve_a_parameter_no_stack_outputs():
    with pytest.raises(ConfigError, match=r"cluster\.LogsBucketArn: .*no earlier stack outputs LogsBucketArn"):
        cfn.resolve_parameters(cluster_spec({"EnvironmentName": "x"}), DECLARED, {})
