"""The stacks of an environment, in order: :func:`deploy` (plan, show, then execute or discard each) and
:func:`destroy` (delete them in reverse order). Both take a CloudFormation client and a :class:`Waits`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from airstack.deploy.cloudformation import errors
from airstack.deploy.cloudformation.changesets import DEFAULT_WAITS, ChangeSets, Plan, Waits
from airstack.deploy.cloudformation.report import print_plan
from airstack.deploy.cloudformation.templates import (
    StackSpec,
    declared_outputs,
    load_template,
    resolve_parameters,
)


@contextlib.contextmanager
def aws_errors(stack_name: str) -> Iterator[None]:
    """AWS API and credential errors as one-line DeployErrors naming the stack."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        raise errors.AwsCallError(stack=stack_name, error=errors.client_error_message(exc)) from None
    except BotoCoreError as exc:
        raise errors.AwsCallError(stack=stack_name, error=exc) from None


def _deploy_one(change_sets: ChangeSets, spec: StackSpec, parameters: dict[str, str], *, confirm,
                dry_run: bool, console) -> dict[str, str]:
    """Plan one stack, show it, then execute or discard it; the stack's outputs afterwards."""
    current = change_sets.plan(spec, parameters)
    try:
        print_plan(console, current)
        if not current.has_changes:
            return change_sets.outputs(current.stack_id)
        if dry_run:
            change_sets.discard(current)
            console.print(f"{spec.stack_name}: dry run: change set deleted, nothing changed")
            return change_sets.outputs(current.stack_id)
        if not confirm(spec, current):
            change_sets.discard(current)
            raise errors.DeclinedError(stack=spec.stack_name)
        console.print(f"{spec.stack_name}: executing change set {current.change_set_name}...")
        outputs = change_sets.execute(current)
        console.print(f"{spec.stack_name}: {current.change_set_type.lower()} complete")
        return outputs
    except BaseException:
        if current.pending:
            change_sets.discard_quietly(current)
        raise


def deploy(client, specs: Sequence[StackSpec], *, confirm: Callable[[StackSpec, Plan], bool],
           dry_run: bool, console, waits: Waits = DEFAULT_WAITS) -> dict[str, dict[str, str]]:
    """Deploy ``specs`` in order with the CloudFormation ``client``; their outputs by stack (``spec.name``).

    Each stack gets its parameters (file values, then earlier stacks' outputs), a change set shown on
    ``console``, then: nothing when there are no changes; deletion in ``dry_run``; otherwise execution
    if ``confirm(spec, plan)`` says yes, else deletion and a DeployError ("declined").

    In a dry run, a stack whose required input is the output of an earlier stack that is not deployed
    yet (or has pending changes) cannot be planned: it is reported as skipped.
    """
    change_sets = ChangeSets(client, waits)
    expected = declared_outputs(specs)
    outputs: dict[str, dict[str, str]] = {}
    pending: set[str] = set()  # dry run: stacks whose outputs may change (or not exist yet)
    for spec in specs:
        declared = load_template(spec.template).get("Parameters") or {}
        try:
            parameters = resolve_parameters(spec, declared, outputs, expected[spec.name])
        except errors.UnresolvedParameterError as exc:
            if not (dry_run and exc.expected_from in pending):
                raise
            console.print(f"{spec.stack_name}: not planned: it needs {exc.parameter} from {exc.expected_from}, "
                          "whose changes are not deployed (dry run)")
            pending.add(spec.name)
            continue
        with aws_errors(spec.stack_name):
            before = change_sets.describe_stack(spec.stack_name)
            outputs[spec.name] = _deploy_one(change_sets, spec, parameters, confirm=confirm, dry_run=dry_run,
                                             console=console)
        if dry_run and (before is None or before.get("StackStatus") == "REVIEW_IN_PROGRESS"):
            pending.add(spec.name)
    return outputs


def destroy(client, specs: Sequence[StackSpec], confirm: Callable[[StackSpec], bool], console,
            waits: Waits = DEFAULT_WAITS) -> list[str]:
    """Delete the stacks in reverse deploy order, each after ``confirm(spec)``; missing stacks are skipped.

    Returns the names of the stacks deleted. A declined stack stops the destroy (DeployError), since the
    stacks before it are what it depends on. Resources with ``DeletionPolicy: Retain`` stay.
    """
    change_sets = ChangeSets(client, waits)
    deleted = []
    for spec in reversed(specs):
        with aws_errors(spec.stack_name):
            stack = change_sets.describe_stack(spec.stack_name)
            if stack is None:
                console.print(f"{spec.stack_name}: does not exist, skipped")
                continue
            if not confirm(spec):
                raise errors.DestroyDeclinedError(stack=spec.stack_name)
            console.print(f"{spec.stack_name}: deleting...")
            change_sets.delete_stack(stack)
            console.print(f"{spec.stack_name}: deleted")
            deleted.append(spec.stack_name)
    return deleted
