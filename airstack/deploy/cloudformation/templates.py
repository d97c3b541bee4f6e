"""Pure template handling: templates, parameter files, stack specs and parameter resolution (no AWS calls).

- :func:`load_stacks`: the stacks to deploy, in order, with their parameters file's values and the
  capabilities their templates need; every problem is a one-line ConfigError naming the file and field;
- :func:`resolve_parameters`: a stack's parameters, its file's values plus earlier stacks' outputs;
- :func:`declared_outputs`: which earlier stack declares each output, for messages;
- :func:`template_body`: the TemplateBody of a spec, within CloudFormation's size limit.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from airstack.deploy.cloudformation.errors import TemplateTooLargeError, UnresolvedParameterError
from airstack.errors import ConfigError

TEMPLATE_DIR = Path("infra") / "cloudformation"
# IAM resources with a custom name need CAPABILITY_NAMED_IAM rather than CAPABILITY_IAM.
IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
}
TEMPLATE_BODY_LIMIT = 51_200  # bytes; larger templates must be uploaded to S3 (TemplateURL)
STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")


@dataclass
class StackSpec:
    """One stack to deploy: ``name`` is the template's stem, ``stack_name`` the CloudFormation stack."""

    name: str
    stack_name: str
    template: Path
    parameters: dict[str, str]
    capabilities: tuple[str, ...]
    parameters_file: str = ""  # where ``parameters`` come from, as shown in messages


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref x -> {"Ref": x}, !GetAtt a.b -> {"Fn::GetAtt": [a, b]})."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_tag)


def _display(path: Path, root: Path | None = None) -> str:
    if root is not None:
        with contextlib.suppress(ValueError):
            return str(path.resolve().relative_to(root.resolve()))
    return str(path)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"invalid YAML: {where}{problem}"


def load_template(path: Path, shown_as: str | None = None) -> dict:
    """A template (YAML or JSON) as a mapping, short tags in their long form; a ConfigError if unreadable."""
    shown = shown_as or str(path)
    try:
        data = yaml.load(path.read_text(), Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such template") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ConfigError(f"{shown}: Resources: a template needs a Resources mapping")
    return data


def capabilities_of(template: Mapping) -> tuple[str, ...]:
    """The capabilities a change set of ``template`` must acknowledge: CAPABILITY_IAM when it declares IAM
    resources (CAPABILITY_NAMED_IAM when one of them has a custom name), CAPABILITY_AUTO_EXPAND for macros."""
    caps: list[str] = []
    resources = [r for r in template.get("Resources", {}).values() if isinstance(r, dict)]
    iam = [r for r in resources if str(r.get("Type", "")).startswith("AWS::IAM::")]
    if any(IAM_NAME_PROPERTIES.get(r["Type"]) in (r.get("Properties") or {}) for r in iam):
        caps.append("CAPABILITY_NAMED_IAM")
    elif iam:
        caps.append("CAPABILITY_IAM")
    if "Transform" in template:
        caps.append("CAPABILITY_AUTO_EXPAND")
    return tuple(caps)


def _parameter_value(shown: str, where: str, value: object) -> str:
    if isinstance(value, bool):
        raise ConfigError(f'{shown}: {where}: quote booleans ("{str(value).lower()}"): CloudFormation wants a string')
    if value is None or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{shown}: {where}: must be a string or a number, not {type(value).__name__}")
    return str(value)


def _read_parameters_file(parameters_file: Path, shown: str) -> dict:
    try:
        data = yaml.safe_load(parameters_file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such parameters file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: {_yaml_problem(exc)}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: (top level): must map stack names to {{ParameterKey: value}}, "
                          f"not {type(data).__name__}")
    return data


def load_stacks(root: Path, stack_names: list[str], parameters_file: Path, stack_prefix: str) -> list[StackSpec]:
    """The stacks ``stack_names``, in that order: template ``infra/cloudformation/<name>.yaml``, stack
    ``<stack_prefix>-<name>``, parameters from ``parameters_file`` (stack -> {ParameterKey: value}).

    Every problem is a ConfigError of one line naming the file and the field.
    """
    template_dir = root / TEMPLATE_DIR
    shown_file = _display(parameters_file, root)
    data = _read_parameters_file(parameters_file, shown_file)
    for stack in data:
        if not (template_dir / f"{stack}.yaml").is_file():
            raise ConfigError(f"{shown_file}: {stack}: no such stack (no {_display(template_dir, root)}/{stack}.yaml)")
    specs = []
    for name in stack_names:
        template_path = template_dir / f"{name}.yaml"
        shown_template = _display(template_path, root)
        template = load_template(template_path, shown_template)
        declared = template.get("Parameters") or {}
        given = data.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{shown_file}: {name}: must be a mapping of ParameterKey: value")
        parameters = {}
        for key, value in given.items():
            if key not in declared:
                raise ConfigError(f"{shown_file}: {name}.{key}: not a parameter of {shown_template}")
            parameters[str(key)] = _parameter_value(shown_file, f"{name}.{key}", value)
        stack_name = f"{stack_prefix}-{name}"
        if not STACK_NAME.fullmatch(stack_name):
            raise ConfigError(f"{shown_file}: {name}: stack name {stack_name!r} is not a valid CloudFormation "
                              "stack name (a letter, then letters, digits and hyphens, at most 128)")
        specs.append(StackSpec(name, stack_name, template_path, parameters, capabilities_of(template), shown_file))
    return specs


def resolve_parameters(spec: StackSpec, template_parameters: Mapping[str, Mapping],
                       outputs_so_far: Mapping[str, Mapping[str, str]],
                       expected_from: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parameters to deploy ``spec`` with: its file's values, plus, for the template's other parameters,
    the output of the same name of an earlier stack (``outputs_so_far``: stack -> outputs, in deploy order;
    a later stack's output wins). Parameters with a Default may stay unset.

    A required parameter (no Default) without a value is an :class:`UnresolvedParameterError` (a
    ConfigError) naming the stack, the parameter and the earlier stack expected to output it
    (``expected_from``: output name -> the earlier stack whose template declares it).
    """
    fed: dict[str, str] = {}
    for outputs in outputs_so_far.values():
        fed.update(outputs)
    resolved = dict(spec.parameters)
    for name, declaration in template_parameters.items():
        if name in resolved:
            continue
        if name in fed:
            resolved[name] = str(fed[name])
        elif "Default" not in (declaration or {}):
            raise _unresolved(spec, name, (expected_from or {}).get(name))
    return resolved


def _unresolved(spec: StackSpec, name: str, earlier: str | None) -> UnresolvedParameterError:
    return UnresolvedParameterError(where=f"{spec.parameters_file}: " if spec.parameters_file else "",
                                    stack=spec.name, stack_name=spec.stack_name, parameter=name,
                                    expected_from=earlier)


def declared_outputs(specs: Sequence[StackSpec]) -> dict[str, dict[str, str]]:
    """For each stack, output name -> the earlier stack (in ``specs`` order) whose template declares it."""
    expected: dict[str, dict[str, str]] = {}
    so_far: dict[str, str] = {}
    for spec in specs:
        expected[spec.name] = dict(so_far)
        for output in load_template(spec.template).get("Outputs") or {}:
            so_far[output] = spec.name
    return expected


def template_body(spec: StackSpec) -> str:
    """The template's text for ``TemplateBody``; a ConfigError when it is over CloudFormation's limit."""
    body = spec.template.read_text()
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise TemplateTooLargeError(spec.template, TEMPLATE_BODY_LIMIT)
    return body
