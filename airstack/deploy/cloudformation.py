"""Deploy the CloudFormation stacks of infra/cloudformation/ through change sets.

It behaves like ``aws cloudformation deploy`` and sceptre. For each stack, in order:

1. its parameters are the environment's parameter file values, plus the Outputs of earlier stacks
   for the template's parameters of the same name (:func:`resolve_parameters`);
2. a change set is created and described (:func:`plan`): identical input is "no changes", not a failure;
3. the change set is shown (:func:`render_changes`), then executed or deleted (:func:`execute`,
   :func:`discard`) as ``confirm`` decides; a failed execution is reported with its failed events.

No change set is left behind unexecuted, whatever happens (errors and Ctrl-C included), and a
stack that only existed to hold a CREATE change set (``REVIEW_IN_PROGRESS``) is deleted with it.

Reading files and rendering (:func:`load_stacks`, :func:`resolve_parameters`, :func:`render_changes`)
is pure; the AWS calls take a CloudFormation client built by :mod:`airstack.deploy.aws`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from airstack.errors import AirstackError, ConfigError

TEMPLATE_DIR = Path("infra") / "cloudformation"
# The StatusReason of a FAILED change set that only means "nothing to do".
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
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
FAILED_EVENTS_SHOWN = 20


class DeployError(AirstackError):
    """A deploy step failed or was declined; the message says what happened and what to look at."""


class UnresolvedParameterError(ConfigError):
    """A required parameter has no value: not in the parameters file, not an earlier stack's output."""

    def __init__(self, message: str, stack: str, parameter: str, expected_from: str | None) -> None:
        super().__init__(message)
        self.stack = stack
        self.parameter = parameter
        self.expected_from = expected_from


@dataclass(frozen=True)
class Waits:
    """Waiter settings (botocore ``WaiterConfig``): delay in seconds between polls, and how many polls."""

    change_set_delay: float = 5
    change_set_attempts: int = 120  # 10 min
    stack_delay: float = 15
    stack_attempts: int = 360  # 90 min: an EKS cluster and its node group, an RDS instance

    def change_set(self) -> dict[str, float]:
        return {"Delay": self.change_set_delay, "MaxAttempts": self.change_set_attempts}

    def stack(self) -> dict[str, float]:
        return {"Delay": self.stack_delay, "MaxAttempts": self.stack_attempts}


DEFAULT_WAITS = Waits()


@dataclass
class StackSpec:
    """One stack to deploy: ``name`` is the template's stem, ``stack_name`` the CloudFormation stack."""

    name: str
    stack_name: str
    template: Path
    parameters: dict[str, str]
    capabilities: tuple[str, ...]
    parameters_file: str = ""  # where ``parameters`` come from, as shown in messages


class Change(NamedTuple):
    """One row of a change set."""

    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional, "" when not applicable


@dataclass
class Plan:
    """A change set of one stack. ``has_changes`` is False when CloudFormation found nothing to do
    (the change set has then already been deleted)."""

    spec: StackSpec
    stack_id: str
    region: str
    change_set_name: str
    change_set_id: str
    change_set_type: str  # CREATE | UPDATE
    has_changes: bool
    changes: list[Change] = field(default_factory=list)
    reason: str = ""  # the change set's StatusReason
    state: str = "pending"  # pending -> executed | deleted

    @property
    def pending(self) -> bool:
        """An unexecuted change set still exists on AWS."""
        return self.state == "pending"


# ------------------------------------------------------------------------------ templates --
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


# ----------------------------------------------------------------------------- parameters --
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
    where = f"{spec.parameters_file}: " if spec.parameters_file else ""
    if earlier:
        why = (f"expected as an output of the earlier stack {earlier}, which returned none "
               f"(not deployed yet, or its deploy did not report outputs)")
    else:
        why = f"not in the parameters file, and no earlier stack outputs {name}"
    return UnresolvedParameterError(f"{where}{spec.name}.{name}: required by {spec.stack_name} (no Default): {why}",
                                    spec.name, name, earlier)


# --------------------------------------------------------------------------------- stacks --
def _client_error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _client_error_message(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', str(exc))}"


def describe_stack(cf, stack_name: str) -> dict | None:
    """The stack (``describe_stacks``), or None when there is none by that name."""
    from botocore.exceptions import ClientError

    try:
        stacks = cf.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if _client_error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks and stacks[0].get("StackStatus") != "DELETE_COMPLETE" else None


def stack_outputs(cf, stack_name: str) -> dict[str, str]:
    """A stack's Outputs as {OutputKey: OutputValue}; {} when it does not exist."""
    stack = describe_stack(cf, stack_name)
    return {o["OutputKey"]: o.get("OutputValue", "") for o in (stack or {}).get("Outputs", [])}


def _events_command(stack_name: str, region: str) -> str:
    return f"aws cloudformation describe-stack-events --stack-name {stack_name} --region {region}"


def _latest_event_id(cf, stack_id: str) -> str | None:
    with contextlib.suppress(Exception):
        events = cf.describe_stack_events(StackName=stack_id).get("StackEvents", [])
        return events[0]["EventId"] if events else None
    return None


def failed_events(cf, stack_id: str, since_event_id: str | None) -> list[dict]:
    """The *_FAILED events of a stack, newest first, recorded after the event ``since_event_id``."""
    found = []
    for page in cf.get_paginator("describe_stack_events").paginate(StackName=stack_id):
        for event in page.get("StackEvents", []):
            if since_event_id is not None and event.get("EventId") == since_event_id:
                return found
            if str(event.get("ResourceStatus", "")).endswith("_FAILED"):
                found.append(event)
    return found


def _failure_report(cf, stack_name: str, stack_id: str, region: str, headline: str,
                    since_event_id: str | None) -> DeployError:
    """A DeployError: the headline, one line per failed event, then the command that lists all events."""
    lines = [headline]
    try:
        events = failed_events(cf, stack_id, since_event_id)
    except Exception as exc:  # noqa: BLE001 - the report must not hide the failure it reports
        events = []
        lines.append(f"  (could not read the stack's events: {exc})")
    for event in events[:FAILED_EVENTS_SHOWN]:
        lines.append(f"  {event.get('LogicalResourceId', '?')} ({event.get('ResourceType', '?')}): "
                     f"{event.get('ResourceStatus')}: {event.get('ResourceStatusReason', '')}")
    if len(events) > FAILED_EVENTS_SHOWN:
        lines.append(f"  ... and {len(events) - FAILED_EVENTS_SHOWN} more failed events")
    if not events:
        lines.append("  (no failed events were recorded)")
    lines.append(f"See every event: {_events_command(stack_name, region)}")
    return DeployError("\n".join(lines))


# ----------------------------------------------------------------------------------- plan --
def _change_set_name() -> str:
    return datetime.now(timezone.utc).strftime("airstack-%Y%m%dT%H%M%S%fZ")


def _read_body(spec: StackSpec) -> str:
    body = spec.template.read_text()
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise ConfigError(f"{spec.template}: the template is over {TEMPLATE_BODY_LIMIT} bytes, the limit of a "
                          "TemplateBody: split the stack")
    return body


def _rows(cf, stack_id: str, change_set_id: str) -> tuple[str, list[Change]]:
    """The change set's status reason and its rows (every page of describe_change_set)."""
    rows, reason, token = [], "", None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = cf.describe_change_set(StackName=stack_id, ChangeSetName=change_set_id, **kwargs)
        reason = page.get("StatusReason", reason) or reason
        for change in page.get("Changes", []):
            rc = change.get("ResourceChange", {})
            rows.append(Change(rc.get("Action", ""), rc.get("LogicalResourceId", ""), rc.get("ResourceType", ""),
                               rc.get("Replacement", "")))
        token = page.get("NextToken")
        if not token:
            return reason, rows


def _wait_for_change_set(cf, plan: Plan, waits: Waits) -> None:
    """Wait until the change set is ready; a "no changes" failure makes ``plan.has_changes`` False."""
    from botocore.exceptions import WaiterError

    try:
        cf.get_waiter("change_set_create_complete").wait(
            StackName=plan.stack_id, ChangeSetName=plan.change_set_id, WaiterConfig=waits.change_set())
    except WaiterError as exc:
        described = cf.describe_change_set(StackName=plan.stack_id, ChangeSetName=plan.change_set_id)
        status, reason = described.get("Status"), described.get("StatusReason", "")
        if status == "FAILED" and any(marker in reason for marker in NO_CHANGES):
            plan.has_changes, plan.reason = False, reason
            return
        if status == "FAILED":
            raise DeployError(f"{plan.spec.stack_name}: the change set failed: {reason}") from None
        raise DeployError(f"{plan.spec.stack_name}: the change set {plan.change_set_name} is still {status} "
                          f"after {waits.change_set_attempts} polls: {exc}") from None


def plan(cf, spec: StackSpec, parameters: Mapping[str, str], waits: Waits = DEFAULT_WAITS) -> Plan:
    """Create a change set for ``spec`` with ``parameters`` and describe it.

    CREATE when the stack does not exist (or only holds change sets: REVIEW_IN_PROGRESS), else UPDATE.
    A change set that "didn't contain changes" gives a Plan with ``has_changes`` False (its change set is
    deleted); any other failure deletes the change set and raises a DeployError with the reason.
    """
    from botocore.exceptions import ClientError

    body = _read_body(spec)
    stack = describe_stack(cf, spec.stack_name)
    status = (stack or {}).get("StackStatus", "")
    region = cf.meta.region_name
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(f"{spec.stack_name}: its creation failed (ROLLBACK_COMPLETE) and it cannot be updated: "
                          f"delete it (aws cloudformation delete-stack --stack-name {spec.stack_name} "
                          f"--region {region}) and deploy again")
    change_set_type = "UPDATE" if stack and status != "REVIEW_IN_PROGRESS" else "CREATE"
    name = _change_set_name()
    try:
        created = cf.create_change_set(
            StackName=spec.stack_name, ChangeSetName=name, ChangeSetType=change_set_type, TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
            Capabilities=list(spec.capabilities), Description=f"airstack deploy of {spec.name}")
    except ClientError as exc:
        raise DeployError(f"{spec.stack_name}: create_change_set: {_client_error_message(exc)}") from None
    result = Plan(spec, created["StackId"], region, name, created["Id"], change_set_type, has_changes=True)
    try:
        _wait_for_change_set(cf, result, waits)
        if result.has_changes:
            result.reason, result.changes = _rows(cf, result.stack_id, result.change_set_id)
        else:
            discard(cf, result, waits)
    except BaseException:
        _discard_quietly(cf, result, waits)
        raise
    return result


# -------------------------------------------------------------------------------- display --
ACTION_STYLES = {"Add": "green", "Modify": "yellow", "Remove": "red", "Import": "cyan", "Dynamic": "magenta"}


def render_changes(plan: Plan):
    """The change set as a rich Table: Action, Logical ID, Type, Replacement."""
    from rich.table import Table

    kind = "new stack" if plan.change_set_type == "CREATE" else "update"
    table = Table(title=f"{plan.spec.stack_name}: {kind}", title_justify="left",
                  caption=f"change set {plan.change_set_name}", caption_justify="left")
    for column in ("Action", "Logical ID", "Type", "Replacement"):
        table.add_column(column)
    for change in plan.changes:
        style = ACTION_STYLES.get(change.action, "")
        replacement = f"[bold red]{change.replacement}[/]" if change.replacement == "True" else change.replacement
        table.add_row(f"[{style}]{change.action}[/]" if style else change.action, change.logical_id,
                      change.resource_type, replacement)
    return table


def print_plan(console, plan: Plan) -> None:
    """The plan on ``console``: its table, or one line when there is nothing to do."""
    if not plan.has_changes:
        console.print(f"{plan.spec.stack_name}: no changes")
    elif not plan.changes:
        console.print(f"{plan.spec.stack_name}: no resource changes (parameters, outputs or tags change)")
    else:
        console.print(render_changes(plan))


# ----------------------------------------------------------------------- execute, discard --
def execute(cf, plan: Plan, waits: Waits = DEFAULT_WAITS) -> dict[str, str]:
    """Execute the change set, wait for the stack, return its outputs.

    A failure (the call itself or the wait) raises a DeployError listing the stack's failed events since
    the execution started, ending with the ``aws cloudformation describe-stack-events`` command.
    """
    from botocore.exceptions import ClientError, WaiterError

    name, region = plan.spec.stack_name, plan.region
    since = _latest_event_id(cf, plan.stack_id)
    try:
        cf.execute_change_set(StackName=plan.stack_id, ChangeSetName=plan.change_set_id)
    except ClientError as exc:
        error = _failure_report(cf, name, plan.stack_id, region,
                                f"{name}: executing change set {plan.change_set_name} failed: "
                                f"{_client_error_message(exc)}", since)
        _discard_quietly(cf, plan, waits)
        raise error from None
    plan.state = "executed"
    waiter = "stack_create_complete" if plan.change_set_type == "CREATE" else "stack_update_complete"
    try:
        cf.get_waiter(waiter).wait(StackName=plan.stack_id, WaiterConfig=waits.stack())
    except WaiterError as exc:
        status = (getattr(exc, "last_response", None) or {}).get("Stacks", [{}])[0].get("StackStatus", "")
        headline = f"{name}: the {plan.change_set_type.lower()} failed" + (f" ({status})" if status else "")
        if "Max attempts exceeded" in str(exc):
            headline = f"{name}: still not complete after {waits.stack_attempts} polls ({status or 'unknown'})"
        raise _failure_report(cf, name, plan.stack_id, region, headline, since) from None
    return stack_outputs(cf, plan.stack_id)


def discard(cf, plan: Plan, waits: Waits = DEFAULT_WAITS) -> None:
    """Delete the unexecuted change set; for a CREATE change set, also the empty stack (REVIEW_IN_PROGRESS)
    that holds it."""
    from botocore.exceptions import ClientError

    if plan.state == "pending":
        try:
            cf.delete_change_set(StackName=plan.stack_id, ChangeSetName=plan.change_set_id)
        except ClientError as exc:
            if _client_error_code(exc) not in ("ChangeSetNotFound", "ChangeSetNotFoundException"):
                raise
        plan.state = "deleted"
    if plan.change_set_type == "CREATE":
        stack = describe_stack(cf, plan.stack_id)
        if stack and stack.get("StackStatus") == "REVIEW_IN_PROGRESS":
            cf.delete_stack(StackName=plan.stack_id)
            cf.get_waiter("stack_delete_complete").wait(StackName=plan.stack_id, WaiterConfig=waits.stack())


def _discard_quietly(cf, plan: Plan, waits: Waits) -> None:
    """discard() on an error path: a failure here must not hide the error being raised."""
    with contextlib.suppress(Exception):
        discard(cf, plan, waits)


# --------------------------------------------------------------------------------- deploy --
def _cloudformation(cf_factory_or_client):
    """A CloudFormation client from a client, or from a ``service -> client`` factory (aws.client_factory)."""
    if hasattr(cf_factory_or_client, "meta"):
        return cf_factory_or_client
    return cf_factory_or_client("cloudformation")


@contextlib.contextmanager
def _aws_errors(stack_name: str) -> Iterator[None]:
    """AWS API and credential errors as one-line DeployErrors naming the stack."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        raise DeployError(f"{stack_name}: {_client_error_message(exc)}") from None
    except BotoCoreError as exc:
        raise DeployError(f"{stack_name}: {exc}") from None


def _declared_outputs(specs: Sequence[StackSpec]) -> dict[str, dict[str, str]]:
    """For each stack, output name -> the earlier stack (in ``specs`` order) whose template declares it."""
    expected: dict[str, dict[str, str]] = {}
    so_far: dict[str, str] = {}
    for spec in specs:
        expected[spec.name] = dict(so_far)
        for output in load_template(spec.template).get("Outputs") or {}:
            so_far[output] = spec.name
    return expected


def _deploy_one(cf, spec: StackSpec, parameters: dict[str, str], *, confirm, dry_run: bool, console,
                waits: Waits) -> dict[str, str]:
    """Plan one stack, show it, then execute or discard it; the stack's outputs afterwards."""
    current = plan(cf, spec, parameters, waits)
    try:
        print_plan(console, current)
        if not current.has_changes:
            return stack_outputs(cf, current.stack_id)
        if dry_run:
            discard(cf, current, waits)
            console.print(f"{spec.stack_name}: dry run: change set deleted, nothing changed")
            return stack_outputs(cf, current.stack_id)
        if not confirm(spec, current):
            discard(cf, current, waits)
            raise DeployError(f"{spec.stack_name}: declined: the change set was deleted, nothing was changed")
        console.print(f"{spec.stack_name}: executing change set {current.change_set_name}...")
        outputs = execute(cf, current, waits)
        console.print(f"{spec.stack_name}: {current.change_set_type.lower()} complete")
        return outputs
    except BaseException:
        if current.pending:
            _discard_quietly(cf, current, waits)
        raise


def deploy(cf_factory_or_client, specs: Sequence[StackSpec], *, confirm: Callable[[StackSpec, Plan], bool],
           dry_run: bool, console, waits: Waits = DEFAULT_WAITS) -> dict[str, dict[str, str]]:
    """Deploy ``specs`` in order; their outputs by stack (``spec.name``).

    Each stack gets its parameters (file values, then earlier stacks' outputs), a change set shown on
    ``console``, then: nothing when there are no changes; deletion in ``dry_run``; otherwise execution
    if ``confirm(spec, plan)`` says yes, else deletion and a DeployError ("declined").

    In a dry run, a stack whose required input is the output of an earlier stack that is not deployed
    yet (or has pending changes) cannot be planned: it is reported as skipped.
    """
    cf = _cloudformation(cf_factory_or_client)
    expected = _declared_outputs(specs)
    outputs: dict[str, dict[str, str]] = {}
    pending: set[str] = set()  # dry run: stacks whose outputs may change (or not exist yet)
    for spec in specs:
        declared = load_template(spec.template).get("Parameters") or {}
        try:
            parameters = resolve_parameters(spec, declared, outputs, expected[spec.name])
        except UnresolvedParameterError as exc:
            if not (dry_run and exc.expected_from in pending):
                raise
            console.print(f"{spec.stack_name}: not planned: it needs {exc.parameter} from {exc.expected_from}, "
                          "whose changes are not deployed (dry run)")
            pending.add(spec.name)
            continue
        with _aws_errors(spec.stack_name):
            before = describe_stack(cf, spec.stack_name)
            outputs[spec.name] = _deploy_one(cf, spec, parameters, confirm=confirm, dry_run=dry_run,
                                             console=console, waits=waits)
        if dry_run and (before is None or before.get("StackStatus") == "REVIEW_IN_PROGRESS"):
            pending.add(spec.name)
    return outputs


def destroy(cf_factory_or_client, specs: Sequence[StackSpec], confirm: Callable[[StackSpec], bool], console,
            waits: Waits = DEFAULT_WAITS) -> list[str]:
    """Delete the stacks in reverse deploy order, each after ``confirm(spec)``; missing stacks are skipped.

    Returns the names of the stacks deleted. A declined stack stops the destroy (DeployError), since the
    stacks before it are what it depends on. Resources with ``DeletionPolicy: Retain`` stay.
    """
    from botocore.exceptions import WaiterError

    cf = _cloudformation(cf_factory_or_client)
    deleted = []
    for spec in reversed(specs):
        with _aws_errors(spec.stack_name):
            stack = describe_stack(cf, spec.stack_name)
            if stack is None:
                console.print(f"{spec.stack_name}: does not exist, skipped")
                continue
            if not confirm(spec):
                raise DeployError(f"{spec.stack_name}: deletion declined; it and the stacks before it are kept")
            stack_id = stack["StackId"]
            since = _latest_event_id(cf, stack_id)
            console.print(f"{spec.stack_name}: deleting...")
            cf.delete_stack(StackName=stack_id)
            try:
                cf.get_waiter("stack_delete_complete").wait(StackName=stack_id, WaiterConfig=waits.stack())
            except WaiterError:
                raise _failure_report(cf, spec.stack_name, stack_id, cf.meta.region_name,
                                      f"{spec.stack_name}: the deletion failed", since) from None
            console.print(f"{spec.stack_name}: deleted")
            deleted.append(spec.stack_name)
    return deleted
