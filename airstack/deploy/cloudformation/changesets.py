"""Change sets on one CloudFormation client: :class:`ChangeSets`, one method per step.

``ChangeSets(client, waits)`` takes a boto3 CloudFormation client from outside (made by
:mod:`airstack.deploy.aws`; tests pass one pointed at moto, or under ``botocore.stub.Stubber``). The steps:
:meth:`~ChangeSets.create` (the change set and its waiter), :meth:`~ChangeSets.describe` (its rows),
:meth:`~ChangeSets.plan` (the three, cleaning up on any error), :meth:`~ChangeSets.execute` (and the stack's
waiter), :meth:`~ChangeSets.discard`, :meth:`~ChangeSets.delete_stack`. A :class:`Plan`'s life is its
:class:`ChangeSetStatus`.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from airstack.deploy.cloudformation import errors
from airstack.deploy.cloudformation.report import failure_report
from airstack.deploy.cloudformation.templates import StackSpec, template_body

# The StatusReason of a FAILED change set that only means "nothing to do".
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
NOT_FOUND = ("ChangeSetNotFound", "ChangeSetNotFoundException")
# The service role CloudFormation deploys the stacks with (infra/cloudformation/bootstrap/deploy-roles.yaml):
# CI's deploy role may create change sets only with it. Unset (a laptop's admin, the stand-ins): the caller's.
ROLE_ENV = "AIRSTACK_CFN_ROLE_ARN"


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


class ChangeSetStatus(enum.Enum):
    """Where a change set of ours stands (after sceptre's change set statuses)."""

    PENDING = "pending"  # created, CloudFormation still computing it (exists on AWS)
    READY = "ready"  # has changes, can be executed (exists on AWS)
    NO_CHANGES = "no changes"  # CloudFormation found nothing to do; already deleted
    EXECUTED = "executed"
    DELETED = "deleted"  # deleted unexecuted: dry run, declined, or an error


class Change(NamedTuple):
    """One row of a change set."""

    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional, "" when not applicable


@dataclass
class Plan:
    """A change set of one stack."""

    spec: StackSpec
    stack_id: str
    region: str
    change_set_name: str
    change_set_id: str
    change_set_type: str  # CREATE | UPDATE
    status: ChangeSetStatus = ChangeSetStatus.PENDING
    changes: list[Change] = field(default_factory=list)
    reason: str = ""  # the change set's StatusReason

    @property
    def has_changes(self) -> bool:
        return self.status is not ChangeSetStatus.NO_CHANGES

    @property
    def pending(self) -> bool:
        """An unexecuted change set of ours still exists on AWS."""
        return self.status in (ChangeSetStatus.PENDING, ChangeSetStatus.READY)


def _change_set_name() -> str:
    return datetime.now(timezone.utc).strftime("airstack-%Y%m%dT%H%M%S%fZ")


def _row(change: dict) -> Change:
    rc = change.get("ResourceChange", {})
    return Change(rc.get("Action", ""), rc.get("LogicalResourceId", ""), rc.get("ResourceType", ""),
                  rc.get("Replacement", ""))


class ChangeSets:
    """The change-set steps of a deploy, on one CloudFormation client."""

    def __init__(self, client, waits: Waits = DEFAULT_WAITS) -> None:
        self.client = client
        self.waits = waits

    @property
    def region(self) -> str:
        return self.client.meta.region_name

    # -------------------------------------------------------------------------- stacks --
    def describe_stack(self, stack_name: str) -> dict | None:
        """The stack (``describe_stacks``), or None when there is none by that name."""
        from botocore.exceptions import ClientError

        try:
            stacks = self.client.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            if errors.client_error_code(exc) == "ValidationError" and "does not exist" in str(exc):
                return None
            raise
        return stacks[0] if stacks and stacks[0].get("StackStatus") != "DELETE_COMPLETE" else None

    def outputs(self, stack_name: str) -> dict[str, str]:
        """A stack's Outputs as {OutputKey: OutputValue}; {} when it does not exist."""
        stack = self.describe_stack(stack_name)
        return {o["OutputKey"]: o.get("OutputValue", "") for o in (stack or {}).get("Outputs", [])}

    def latest_event_id(self, stack_id: str) -> str | None:
        """The newest event's id (failures after it are this run's), None when unreadable."""
        with contextlib.suppress(Exception):
            events = self.client.describe_stack_events(StackName=stack_id).get("StackEvents", [])
            return events[0]["EventId"] if events else None
        return None

    def failed_events(self, stack_id: str, since_event_id: str | None) -> list[dict]:
        """The *_FAILED events of a stack, newest first, recorded after the event ``since_event_id``."""
        found = []
        for page in self.client.get_paginator("describe_stack_events").paginate(StackName=stack_id):
            for event in page.get("StackEvents", []):
                if since_event_id is not None and event.get("EventId") == since_event_id:
                    return found
                if str(event.get("ResourceStatus", "")).endswith("_FAILED"):
                    found.append(event)
        return found

    def failure(self, stack_name: str, stack_id: str, headline: str,
                since_event_id: str | None) -> errors.StackFailedError:
        """A StackFailedError: the headline, the failed events since ``since_event_id``, the events command."""
        try:
            events, unreadable = self.failed_events(stack_id, since_event_id), None
        except Exception as exc:  # noqa: BLE001 - the report must not hide the failure it reports
            events, unreadable = [], exc
        return errors.StackFailedError(report=failure_report(headline, events, stack_name, self.region, unreadable))

    # ------------------------------------------------------------------------ plan --
    def create(self, spec: StackSpec, parameters: Mapping[str, str]) -> Plan:
        """Create a change set (CREATE when the stack does not exist or only holds change sets, else UPDATE)."""
        from botocore.exceptions import ClientError

        body = template_body(spec)
        stack = self.describe_stack(spec.stack_name)
        status = (stack or {}).get("StackStatus", "")
        if status == "ROLLBACK_COMPLETE":
            raise errors.RollbackCompleteError(stack=spec.stack_name, region=self.region)
        change_set_type = "UPDATE" if stack and status != "REVIEW_IN_PROGRESS" else "CREATE"
        name = _change_set_name()
        try:
            created = self.client.create_change_set(
                StackName=spec.stack_name, ChangeSetName=name, ChangeSetType=change_set_type, TemplateBody=body,
                Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
                Capabilities=list(spec.capabilities), Description=f"airstack deploy of {spec.name}",
                **({"RoleARN": os.environ[ROLE_ENV]} if os.environ.get(ROLE_ENV) else {}))
        except ClientError as exc:
            raise errors.CreateChangeSetError(stack=spec.stack_name, error=errors.client_error_message(exc)) from None
        return Plan(spec, created["StackId"], self.region, name, created["Id"], change_set_type)

    def wait(self, plan: Plan) -> None:
        """Wait until the change set is computed: READY, or NO_CHANGES (then it is deleted); else an error."""
        from botocore.exceptions import WaiterError

        try:
            self.client.get_waiter("change_set_create_complete").wait(
                StackName=plan.stack_id, ChangeSetName=plan.change_set_id, WaiterConfig=self.waits.change_set())
        except WaiterError as exc:
            described = self.client.describe_change_set(StackName=plan.stack_id, ChangeSetName=plan.change_set_id)
            status, reason = described.get("Status"), described.get("StatusReason", "")
            if status == "FAILED" and any(marker in reason for marker in NO_CHANGES):
                self._remove(plan)
                plan.status, plan.reason = ChangeSetStatus.NO_CHANGES, reason
                return
            if status == "FAILED":
                raise errors.ChangeSetFailedError(stack=plan.spec.stack_name, reason=reason) from None
            raise errors.ChangeSetTimeoutError(stack=plan.spec.stack_name, change_set=plan.change_set_name,
                                               status=status, polls=self.waits.change_set_attempts,
                                               error=exc) from None
        plan.status = ChangeSetStatus.READY

    def describe(self, plan: Plan) -> None:
        """The change set's status reason and its rows (every page of describe_change_set) into ``plan``."""
        token = None
        while True:
            page = self.client.describe_change_set(StackName=plan.stack_id, ChangeSetName=plan.change_set_id,
                                                   **({"NextToken": token} if token else {}))
            plan.reason = page.get("StatusReason", plan.reason) or plan.reason
            plan.changes.extend(_row(change) for change in page.get("Changes", []))
            token = page.get("NextToken")
            if not token:
                return

    def plan(self, spec: StackSpec, parameters: Mapping[str, str]) -> Plan:
        """create, wait and describe; a failure on the way deletes the change set before it is raised."""
        result = self.create(spec, parameters)
        try:
            self.wait(result)
            if result.status is ChangeSetStatus.READY:
                self.describe(result)
        except BaseException:
            self.discard_quietly(result)
            raise
        return result

    # ------------------------------------------------------------- execute, discard --
    def execute(self, plan: Plan) -> dict[str, str]:
        """Execute the change set, wait for the stack, return its outputs.

        A failure (the call itself or the wait) raises a StackFailedError listing the stack's failed events
        since the execution started, ending with the ``aws cloudformation describe-stack-events`` command.
        """
        from botocore.exceptions import ClientError, WaiterError

        name = plan.spec.stack_name
        since = self.latest_event_id(plan.stack_id)
        try:
            self.client.execute_change_set(StackName=plan.stack_id, ChangeSetName=plan.change_set_id)
        except ClientError as exc:
            error = self.failure(name, plan.stack_id, f"{name}: executing change set {plan.change_set_name} "
                                 f"failed: {errors.client_error_message(exc)}", since)
            self.discard_quietly(plan)
            raise error from None
        plan.status = ChangeSetStatus.EXECUTED
        waiter = "stack_create_complete" if plan.change_set_type == "CREATE" else "stack_update_complete"
        try:
            self.client.get_waiter(waiter).wait(StackName=plan.stack_id, WaiterConfig=self.waits.stack())
        except WaiterError as exc:
            raise self.failure(name, plan.stack_id, self._failed_headline(plan, exc), since) from None
        return self.outputs(plan.stack_id)

    def _failed_headline(self, plan: Plan, exc: Exception) -> str:
        status = (getattr(exc, "last_response", None) or {}).get("Stacks", [{}])[0].get("StackStatus", "")
        if "Max attempts exceeded" in str(exc):
            return f"{plan.spec.stack_name}: still not complete after {self.waits.stack_attempts} polls " \
                   f"({status or 'unknown'})"
        return f"{plan.spec.stack_name}: the {plan.change_set_type.lower()} failed" + (f" ({status})" if status else "")

    def discard(self, plan: Plan) -> None:
        """Delete the unexecuted change set; for a CREATE change set, also the empty stack (REVIEW_IN_PROGRESS)
        that holds it."""
        if plan.pending:
            self._remove(plan)
            plan.status = ChangeSetStatus.DELETED

    def discard_quietly(self, plan: Plan) -> None:
        """discard() on an error path: a failure here must not hide the error being raised."""
        with contextlib.suppress(Exception):
            self.discard(plan)

    def _remove(self, plan: Plan) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_change_set(StackName=plan.stack_id, ChangeSetName=plan.change_set_id)
        except ClientError as exc:
            if errors.client_error_code(exc) not in NOT_FOUND:
                raise
        if plan.change_set_type == "CREATE":
            stack = self.describe_stack(plan.stack_id)
            if stack and stack.get("StackStatus") == "REVIEW_IN_PROGRESS":
                self.client.delete_stack(StackName=plan.stack_id)
                self.client.get_waiter("stack_delete_complete").wait(StackName=plan.stack_id,
                                                                     WaiterConfig=self.waits.stack())

    # -------------------------------------------------------------------- destroy --
    def delete_stack(self, stack: dict) -> None:
        """Delete the stack (a ``describe_stacks`` entry) and wait; a failure reports its failed events."""
        from botocore.exceptions import WaiterError

        stack_id, name = stack["StackId"], stack["StackName"]
        since = self.latest_event_id(stack_id)
        self.client.delete_stack(StackName=stack_id)
        try:
            self.client.get_waiter("stack_delete_complete").wait(StackName=stack_id, WaiterConfig=self.waits.stack())
        except WaiterError:
            raise self.failure(name, stack_id, f"{name}: the deletion failed", since) from None
