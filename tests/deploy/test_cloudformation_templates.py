"""The CloudFormation stacks in infra/cloudformation/: lint, security rules, and how parameters are wired
between stacks and environments (their deploy on the moto server: test_cloudformation_moto.py).

The deploy order is STACKS; an earlier stack's Outputs feed a later stack's Parameters of the same
name, and infra/cloudformation/parameters/<env>.yaml gives the rest (stack -> {ParameterKey: value}).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("infra/", "settings/")

STACKS = ("network", "registries", "logs", "database", "broker", "cluster")
ENVIRONMENTS = ("integration", "production")
WORLD = {"0.0.0.0/0", "::/0"}
SECRET_NAME = re.compile(r"pass(word|wd|phrase)|token|api_?key|private_?key", re.IGNORECASE)
REGION = "eu-west-1"

# Moto's CloudFormation skips these resource types with a warning (the moto tests below say what that hides).
# A warning filter is colon-separated, so ".." stands for "::" in the type names.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Tried to parse AWS..(S3..BucketPolicy|SecretsManager..\w+|ElastiCache..\w+|EKS..\w+) but it's not "
    r"supported by moto:UserWarning")


# ------------------------------------------------------------------------------- loading --
def cfn_dir(root: Path) -> Path:
    return root / "infra" / "cloudformation"


def load_template(path: Path) -> dict:
    """A template with its short tags (!Ref, !Sub...) read as their long forms ({"Ref": ...})."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(path))


@pytest.fixture(scope="module")
def templates(repo_root) -> dict[str, dict]:
    return {stack: load_template(cfn_dir(repo_root) / f"{stack}.yaml") for stack in STACKS}


@pytest.fixture(scope="module")
def parameter_files(repo_root) -> dict[str, dict[str, dict]]:
    folder = cfn_dir(repo_root) / "parameters"
    return {env: yaml.safe_load((folder / f"{env}.yaml").read_text()) or {} for env in ENVIRONMENTS}


def image_folders(root: Path) -> list[str]:
    """The image folders, as airstack.images.spec.discover finds them."""
    return sorted(p.name for p in (root / "images").iterdir() if p.is_dir() and not p.name.startswith("."))


def resources_of(template: dict, resource_type: str) -> dict[str, dict]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == resource_type}


def ref(value) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def ingress_rules(template: dict):
    """(security group logical id, rule) for every ingress rule, inline or a SecurityGroupIngress resource."""
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::EC2::SecurityGroup":
            for rule in props.get("SecurityGroupIngress", []):
                yield name, rule
        elif res["Type"] == "AWS::EC2::SecurityGroupIngress":
            yield ref(props.get("GroupId")), props


def resolved_values(template: dict, value, stack: str, parameter_files: dict) -> list:
    """A literal as is; a parameter reference as its default and its value in every environment; a
    ``!Select [i, !Ref ListParameter]`` as every value of that list, in every environment."""
    if isinstance(value, dict) and "Fn::Select" in value:
        lists = resolved_values(template, value["Fn::Select"][1], stack, parameter_files)
        return [v.strip() for listed in lists for v in str(listed).split(",")]
    name = ref(value)
    if name is None or name not in template.get("Parameters", {}):
        return [value]
    spec = template["Parameters"][name]
    values = [spec["Default"]] if "Default" in spec else []
    return values + [files[stack][name] for files in parameter_files.values() if name in files.get(stack, {})]


def effective_parameters(template: dict, given: dict) -> dict:
    """Every parameter's value in an environment: its parameter file's value, else its default."""
    params = template.get("Parameters", {})
    return {name: given.get(name, spec.get("Default")) for name, spec in params.items()}


# ---------------------------------------------------------------------------------- lint --
def test_every_template_is_in_the_deploy_order(repo_root):
    """A template the deploy order does not name would never be deployed (nor tested here)."""
    assert sorted(p.stem for p in cfn_dir(repo_root).glob("*.yaml")) == sorted(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_cfn_lint_reports_nothing(repo_root, stack):
    """cfn-lint, with the repository's .cfnlintrc.yaml (its regions, informational checks included)."""
    from cfnlint.api import ManualArgs, lint_file

    rc = yaml.safe_load((repo_root / ".cfnlintrc.yaml").read_text())
    config = ManualArgs(regions=rc["regions"], include_checks=rc.get("include_checks", []),
                        ignore_checks=rc.get("ignore_checks", []))
    matches = lint_file(cfn_dir(repo_root) / f"{stack}.yaml", config=config)
    assert [str(m) for m in matches] == []


def test_every_template_names_its_environment(templates):
    for stack, template in templates.items():
        assert "EnvironmentName" in template["Parameters"], stack
        assert "Default" not in template["Parameters"]["EnvironmentName"], f"{stack}: EnvironmentName has a default"
        assert "${EnvironmentName}" in json.dumps(template["Resources"]) or '"EnvironmentName"' in json.dumps(
            template["Resources"]), f"{stack}: EnvironmentName is not used in any name or tag"


# ------------------------------------------------------------------------------ security --
def test_no_ingress_is_open_to_the_world(templates, parameter_files):
    """No ingress rule admits 0.0.0.0/0 or ::/0: not literally, not by a parameter's default, not by any
    environment's value; no parameter file value is the whole internet (ClusterPublicAccessCidrs...)."""
    open_rules = []
    for stack, template in templates.items():
        for group, rule in ingress_rules(template):
            for key in ("CidrIp", "CidrIpv6"):
                if key in rule and WORLD & set(resolved_values(template, rule[key], stack, parameter_files)):
                    open_rules.append(f"{stack}: {group}: {rule}")
    assert open_rules == []
    for env, files in parameter_files.items():
        for stack, values in files.items():
            for key, value in values.items():
                assert not WORLD & {v.strip() for v in str(value).split(",")}, f"{env}: {stack}.{key} = {value}"


def test_bastion_admits_only_the_vpn_cidr(templates):
    """The VPN bastion's security groups admit SSH and the VPN port, and only from the VpnCidr parameter."""
    network = templates["network"]
    instances = resources_of(network, "AWS::EC2::Instance")
    assert list(instances) == ["Bastion"]
    groups = {ref(g) for g in instances["Bastion"]["Properties"]["SecurityGroupIds"]}
    rules = [rule for group, rule in ingress_rules(network) if group in groups]
    assert rules, "the bastion has no ingress at all"
    for rule in rules:
        assert rule.get("CidrIp") == {"Ref": "VpnCidr"}, rule
        assert set(rule) <= {"Description", "IpProtocol", "FromPort", "ToPort", "CidrIp"}, rule
    ports = {(rule["IpProtocol"], json.dumps(rule["FromPort"]), json.dumps(rule["ToPort"])) for rule in rules}
    assert ports == {("tcp", "22", "22"), ("udp", '{"Ref": "VpnPort"}', '{"Ref": "VpnPort"}')}
    assert "Default" not in network["Parameters"]["VpnCidr"], "VpnCidr must be chosen per environment"


def test_no_parameter_holds_a_secret(templates, parameter_files):
    """Secrets are never parameters: none is named like one, none is NoEcho, no default or value mentions one."""
    for stack, template in templates.items():
        for name, spec in template.get("Parameters", {}).items():
            assert not SECRET_NAME.search(name), f"{stack}: parameter {name}"
            assert not spec.get("NoEcho"), f"{stack}: parameter {name} is NoEcho: a secret parameter"
            assert not SECRET_NAME.search(str(spec.get("Default", ""))), f"{stack}: {name}'s default"
    for env, files in parameter_files.items():
        for stack, values in files.items():
            assert not [key for key in values if SECRET_NAME.search(key)], f"{env}: {stack}"


def test_database_password_comes_from_secrets_manager(templates):
    """The master password is generated by Secrets Manager and read through a dynamic reference
    (or left to RDS with ManageMasterUserPassword); it is never text in the template."""
    database = templates["database"]
    instances = resources_of(database, "AWS::RDS::DBInstance")
    assert instances
    for name, instance in instances.items():
        props = instance["Properties"]
        if props.get("ManageMasterUserPassword") is True:
            assert "MasterUserPassword" not in props
            continue
        password = props["MasterUserPassword"]
        assert isinstance(password, dict) and set(password) == {"Fn::Sub"}, f"{name}: {password!r}"
        match = re.fullmatch(r"\{\{resolve:secretsmanager:\$\{(\w+)\}:SecretString:(\w+)\}\}", password["Fn::Sub"])
        assert match, f"{name}: MasterUserPassword is not a Secrets Manager dynamic reference"
        secret = database["Resources"][match[1]]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        generated = secret["Properties"]["GenerateSecretString"]
        assert generated["GenerateStringKey"] == match[2]
        assert f'"{match[2]}"' not in json.dumps(generated.get("SecretStringTemplate", "")), "a typed-in password"
        assert generated.get("PasswordLength", 32) >= 20


# ----------------------------------------------------------------------------- registries --
def test_one_repository_per_image_folder(repo_root, templates):
    """Every folder under images/ has exactly one ECR repository (<RepositoryPrefix>/<folder>), scanned on
    push, with a valid lifecycle policy, and its URI is an output."""
    registries = templates["registries"]
    repositories = resources_of(registries, "AWS::ECR::Repository")
    names = []
    for logical_id, repository in repositories.items():
        props = repository["Properties"]
        name = props["RepositoryName"]["Fn::Sub"]
        assert name.startswith("${RepositoryPrefix}/"), f"{logical_id}: {name}"
        names.append(name.removeprefix("${RepositoryPrefix}/"))
        assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}, logical_id
        policy = json.loads(re.sub(r"\$\{\w+\}", "1", props["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]))
        priorities = [rule["rulePriority"] for rule in policy["rules"]]
        any_rules = [rule["rulePriority"] for rule in policy["rules"] if rule["selection"]["tagStatus"] == "any"]
        assert len(set(priorities)) == len(priorities), f"{logical_id}: duplicate rule priorities"
        assert all(p == max(priorities) for p in any_rules), f"{logical_id}: ECR wants the 'any' rule last"
        outputs = [o["Value"] for o in registries["Outputs"].values()]
        assert {"Fn::GetAtt": [logical_id, "RepositoryUri"]} in outputs, f"{logical_id}: no URI output"
    assert sorted(names) == image_folders(repo_root)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_registry_prefix_matches_the_settings(repo_root, parameter_files, env):
    """Images are pushed to settings/<env>/deploy.yaml's images.registry: its path is RepositoryPrefix."""
    settings = yaml.safe_load((repo_root / "settings" / env / "deploy.yaml").read_text())
    registry = settings["images"]["registry"]
    assert registry.split("/", 1)[1] == parameter_files[env]["registries"]["RepositoryPrefix"]


# --------------------------------------------------------------------------------- buckets --
def substitute(template: str, values: dict[str, str]) -> str:
    """A Fn::Sub string with ``${Name}`` replaced (every name must be given)."""
    return re.sub(r"\$\{([\w:.]+)\}", lambda m: values[m.group(1)], template)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_yaml_buckets_are_the_logs_stack_buckets(templates, parameter_files, repo_root, env):
    """deploy.yaml's airflow.remote_logging.base and airflow.storage.base are the logs stack's outputs
    RemoteBaseLogFolder and StorageBase, as CloudFormation will name them in that environment: its
    EnvironmentName, the account of images.registry (<account>.dkr.ecr.<region>...), its region. Those
    buckets are the ones cluster.yaml lets the Airflow pods' role read and write."""
    settings = yaml.safe_load((repo_root / "settings" / env / "deploy.yaml").read_text())
    account, _, _, region = settings["images"]["registry"].split("/", 1)[0].split(".")[:4]
    assert region == settings["cloudformation"]["region"]
    logs = templates["logs"]
    values = {"EnvironmentName": parameter_files[env]["logs"]["EnvironmentName"], "AWS::AccountId": account,
              "AWS::Region": region}
    for logical_id in ("LogsBucket", "DataBucket"):
        values[logical_id] = substitute(logs["Resources"][logical_id]["Properties"]["BucketName"]["Fn::Sub"], values)
    for option, output in (("remote_logging", "RemoteBaseLogFolder"), ("storage", "StorageBase")):
        assert settings["airflow"][option]["base"] == substitute(logs["Outputs"][output]["Value"]["Fn::Sub"], values)
        assert "conn_id" not in settings["airflow"][option], "deployed pods reach S3 with their own identity"


def test_the_airflow_role_may_use_both_buckets(templates):
    """cluster.yaml's Pod Identity role reads and writes objects in both buckets the logs stack outputs."""
    role = templates["cluster"]["Resources"]["AirflowRole"]["Properties"]
    statements = [st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]]
    for arn in ("LogsBucketArn", "DataBucketArn"):
        assert "s3:ListBucket" in json.dumps([st for st in statements if st["Resource"] == {"Ref": arn}])
        objects = [st for st in statements if st["Resource"] == {"Fn::Sub": f"${{{arn}}}/*"}]
        assert objects and {"s3:GetObject", "s3:PutObject"} <= set(objects[0]["Action"]), arn
        assert arn in templates["logs"]["Outputs"]
    accounts = {r["Properties"]["ServiceAccount"]["Fn::Sub"] for r in
                resources_of(templates["cluster"], "AWS::EKS::PodIdentityAssociation").values()}
    # The official chart's service accounts: KubernetesExecutor pods and Celery workers run as the worker's.
    assert {f"${{AirflowReleaseName}}-{c}" for c in ("worker", "triggerer", "api-server", "scheduler")} <= accounts


def test_previews_may_use_only_their_own_prefix(templates):
    """cluster.yaml's PreviewRole: objects under previews/<the pod's namespace>/ of both buckets (the
    prefix airstack.deploy.target.store_base gives a preview), listing there only, preview namespaces only."""
    role = templates["cluster"]["Resources"]["PreviewRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["StringLike"] == {
        "aws:RequestTag/kubernetes-namespace": {"Fn::Sub": "${AirflowNamespace}-*"}}
    statements = [st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]]
    (listing,) = [st for st in statements if st["Action"] == "s3:ListBucket"]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["previews/${aws:PrincipalTag/kubernetes-namespace}/*"]
    (objects,) = [st for st in statements if st is not listing]
    assert objects["Resource"] == [{"Fn::Sub": f"${{{arn}}}/previews/${{!aws:PrincipalTag/kubernetes-namespace}}/*"}
                                   for arn in ("LogsBucketArn", "DataBucketArn")]
    assert "PreviewRoleArn" in templates["cluster"]["Outputs"]  # what airstack.deploy.pod_identity reads


# ----------------------------------------------------------------------------- parameters --
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_parameter_is_provided(templates, parameter_files, env):
    """In deploy order, each parameter without a default comes from the environment's parameter file
    or an earlier stack's output (not both); every key in the file is a parameter of its template; no two
    stacks output the same name (the later would silently win)."""
    files = parameter_files[env]
    assert set(files) <= set(STACKS), f"unknown stacks: {set(files) - set(STACKS)}"
    fed: set[str] = set()
    problems = []
    for stack in STACKS:
        declared = templates[stack].get("Parameters", {})
        given = files.get(stack, {})
        problems += [f"{stack}: {key} is not a parameter of {stack}.yaml" for key in set(given) - set(declared)]
        problems += [f"{stack}: {key} is given and also fed from an output" for key in set(given) & fed]
        problems += [f"{stack}: {name} has no value" for name, spec in declared.items()
                     if "Default" not in spec and name not in given and name not in fed]
        if given.get("EnvironmentName", env) != env:
            problems.append(f"{stack}: EnvironmentName is {given['EnvironmentName']!r}")
        outputs = set(templates[stack].get("Outputs", {}))
        problems += [f"{stack}: output {name} is also an earlier stack's output" for name in outputs & fed]
        fed |= outputs
    assert problems == []


def constraint_violations(name: str, spec: dict, value) -> list[str]:
    """What CloudFormation would reject in a parameter value."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return [f"{name}: {value!r} is not a string or a number (YAML true is 'True': quote booleans)"]
    text, problems = str(value), []
    if "AllowedValues" in spec and text not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"{name}: {text} is not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text):
        problems.append(f"{name}: {text} does not match {spec['AllowedPattern']}")
    if spec["Type"] == "Number":
        number = float(text)
        if number < float(spec.get("MinValue", number)) or number > float(spec.get("MaxValue", number)):
            problems.append(f"{name}: {text} is outside [{spec.get('MinValue')}, {spec.get('MaxValue')}]")
    return problems


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_values_meet_their_constraints(templates, parameter_files, env):
    problems = []
    for stack, given in parameter_files[env].items():
        declared = templates[stack]["Parameters"]
        for name, value in given.items():
            problems += [f"{stack}: {p}" for p in constraint_violations(name, declared.get(name, {}), value)]
    assert problems == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnets_fit_the_vpc(templates, parameter_files, env):
    """The four subnets lie inside the VPC's range, without overlapping."""
    values = effective_parameters(templates["network"], parameter_files[env].get("network", {}))
    vpc = ipaddress.ip_network(values["VpcCidr"])
    names = [name for name in values if re.fullmatch(r"(Public|Private)Subnet\dCidr", name)]
    subnets = [ipaddress.ip_network(values[name]) for name in names]
    assert len(subnets) == 4
    assert all(subnet.subnet_of(vpc) for subnet in subnets), f"{subnets} not all in {vpc}"
    assert not [(a, b) for a, b in itertools.combinations(subnets, 2) if a.overlaps(b)]


def test_production_is_protected(templates, parameter_files):
    """Production's database cannot be deleted by accident and fails over; so does its broker."""
    database = effective_parameters(templates["database"], parameter_files["production"]["database"])
    broker = effective_parameters(templates["broker"], parameter_files["production"]["broker"])
    assert (database["DBDeletionProtection"], database["DBMultiAZ"]) == ("true", "true")
    assert int(broker["BrokerNodeCount"]) >= 2
    assert templates["database"]["Resources"]["DBInstance"]["DeletionPolicy"] == "Snapshot"
