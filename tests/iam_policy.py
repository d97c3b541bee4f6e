"""IAM policies of CloudFormation templates, read as data and evaluated (for the permission tests).

:func:`roles` resolves a template's intrinsic functions (Ref, Fn::Sub, Fn::GetAtt of a role's Arn, Fn::If
with its conditions, Fn::Join) for given parameter values, and returns each IAM role's inline policy
statements and trust policy. :func:`allowed` evaluates a request against statements the way IAM does for
one identity policy set: allowed when an Allow statement matches and no Deny does. Actions are matched
case-insensitively with ``*``/``?`` wildcards, resources case-sensitively; ``Action``/``NotAction``,
``Resource``/``NotResource`` and the condition operators the templates use (``StringEquals``,
``StringLike``, ``StringNotEquals``, ``StringNotLike``, their ``ForAnyValue:`` forms, ``...IfExists``) are
understood; a policy variable (``${aws:PrincipalTag/x}``) is replaced by the request's value. Anything else
raises, so a statement this module cannot judge never passes for allowed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

ACCOUNT, REGION, PARTITION = "111122223333", "eu-west-1", "aws"
NO_VALUE = object()


def load(path: Path) -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(path))


@dataclass
class Template:
    body: dict
    parameters: dict[str, object]
    conditions: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        declared = self.body.get("Parameters", {})
        values = {name: spec.get("Default") for name, spec in declared.items()}
        unknown = set(self.parameters) - set(declared)
        assert not unknown, f"parameters the template does not declare: {sorted(unknown)}"
        values.update(self.parameters)
        missing = [name for name, value in values.items() if value is None]
        assert not missing, f"no value for {missing}"
        for name, spec in declared.items():
            if spec["Type"] in ("CommaDelimitedList",) or spec["Type"].startswith("List<"):
                values[name] = [v.strip() for v in str(values[name]).split(",")]
            else:
                values[name] = str(values[name])
        self.values = {**values, "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION}
        self.conditions = {name: self.resolve(expr) for name, expr in self.body.get("Conditions", {}).items()}

    # --------------------------------------------------------------------- intrinsics --
    def resolve(self, node):
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.conditions[arg]
            if key.startswith("Fn::"):
                return self.function(key, arg)
        return {k: v for k, v in ((self.resolve_key(k), self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def resolve_key(self, key):
        return key

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        resource = self.body["Resources"][name]
        return self.resolve(resource["Properties"].get("RoleName", name))

    def function(self, key: str, arg):
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return self.sub(text, extra)
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.conditions[name] else no)
        if key == "Fn::Equals":
            left, right = self.resolve(arg)
            return left == right
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(arg))
        if key == "Fn::Or":
            return any(self.resolve(arg))
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(self.resolve(items))
        if key == "Fn::GetAtt":
            name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            resource = self.body["Resources"][name]
            if resource["Type"] == "AWS::IAM::Role" and attribute == "Arn":
                return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{self.role_name(name)}"
            return f"<{name}.{attribute}>"
        raise AssertionError(f"an intrinsic function the permission tests cannot resolve: {key}")

    def sub(self, text: str, extra: dict) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!x}: a literal ${x} (an IAM policy variable)
            if name in extra:
                return str(extra[name])
            if "." in name:
                return self.function("Fn::GetAtt", name)
            value = self.ref(name)
            assert isinstance(value, str), f"${{{name}}} is not a string"
            return value

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def role_name(self, logical_id: str, stack: str = "stack") -> str:
        given = self.body["Resources"][logical_id]["Properties"].get("RoleName")
        return self.resolve(given) if given else f"{stack}-{logical_id}-GENERATED"

    # -------------------------------------------------------------------------- roles --
    def roles(self, stack: str = "stack") -> dict[str, Role]:
        """Each IAM role the template creates (under its conditions): its statements and trust statements."""
        out = {}
        for name, resource in self.body["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role" or not self.conditions.get(resource.get("Condition"), True):
                continue
            props = self.resolve(resource["Properties"])
            trust = props["AssumeRolePolicyDocument"]
            trust = json.loads(trust) if isinstance(trust, str) else trust
            statements = [s for policy in [*props.get("Policies", []), *self.role_policies(name)]
                          for s in as_list(policy["PolicyDocument"]["Statement"])]
            assert not props.get("ManagedPolicyArns") or name in ("ClusterRole", "NodeRole"), \
                f"{name}: a managed policy cannot be evaluated here"
            arn = f"arn:{PARTITION}:iam::{ACCOUNT}:role/{self.role_name(name, stack)}"
            out[name] = Role(name, arn, statements, as_list(trust["Statement"]))
        return out

    def role_policies(self, role: str) -> list[dict]:
        """The AWS::IAM::Policy resources (under their conditions) attached to ``role`` by a Ref."""
        return [self.resolve(r["Properties"]) for r in self.body["Resources"].values()
                if r["Type"] == "AWS::IAM::Policy" and self.conditions.get(r.get("Condition"), True)
                and {"Ref": role} in r["Properties"].get("Roles", [])]


@dataclass
class Role:
    logical_id: str
    arn: str
    statements: list[dict]
    trust: list[dict]

    def allows(self, action: str, resource: str, context: dict | None = None) -> bool:
        return allowed(self.statements, action, resource, context or {})

    def trusts(self, action: str, context: dict) -> bool:
        return allowed(self.trust, action, "*", context)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _variables(text: str, context: dict) -> str | None:
    """``${aws:PrincipalTag/x}`` replaced by the request's value; None when the request has none."""
    missing = []

    def one(match: re.Match) -> str:
        key = match.group(1)
        if key not in context:
            missing.append(key)
            return ""
        return str(context[key])

    out = re.sub(r"\$\{([^}]+)\}", one, text)
    return None if missing else out


def _condition(operator: str, key: str, wanted, context: dict) -> bool:
    any_value = operator.startswith("ForAnyValue:")
    base = operator.removeprefix("ForAnyValue:")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    found = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if found is None:
        return if_exists
    values = as_list(found)
    patterns = [_variables(w, context) for w in as_list(wanted)]
    if base in ("StringEquals", "StringNotEquals"):
        hit = [any(v == p for p in patterns if p is not None) for v in values]
    elif base in ("StringLike", "StringNotLike"):
        hit = [any(_glob(p, v, True) for p in patterns if p is not None) for v in values]
    else:
        raise AssertionError(f"a condition operator the permission tests cannot evaluate: {operator}")
    if base in ("StringNotEquals", "StringNotLike"):
        return not any(hit)
    return any(hit) if any_value else bool(hit) and all(hit)


def _matches(statement: dict, action: str, resource: str, context: dict) -> bool:
    if "Action" in statement:
        if not any(_glob(a, action, False) for a in as_list(statement["Action"])):
            return False
    elif any(_glob(a, action, False) for a in as_list(statement["NotAction"])):
        return False
    if "Resource" in statement or "NotResource" in statement:
        key = "Resource" if "Resource" in statement else "NotResource"
        patterns = [_variables(r, context) for r in as_list(statement[key])]
        hit = any(p is not None and _glob(p, resource, True) for p in patterns)
        if hit != (key == "Resource"):
            return False
    for operator, block in statement.get("Condition", {}).items():
        for key, wanted in block.items():
            if not _condition(operator, key, wanted, context):
                return False
    return True


def allowed(statements: list[dict], action: str, resource: str, context: dict) -> bool:
    """IAM's answer for one request: an explicit Deny wins; else an Allow must match."""
    for statement in statements:
        assert statement["Effect"] in ("Allow", "Deny"), statement
        assert not set(statement) - {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
                                     "Condition", "Principal"}, f"an element the tests cannot judge: {statement}"
    matching = [s for s in statements if _matches(s, action, resource, context)]
    return any(s["Effect"] == "Allow" for s in matching) and not any(s["Effect"] == "Deny" for s in matching)
