"""Reporting: a change set as a table, one line when there is nothing to do, and failure reports.

Pure: it formats what :mod:`.changesets` read from AWS (rich renderables and strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airstack.deploy.cloudformation.changesets import Plan

ACTION_STYLES = {"Add": "green", "Modify": "yellow", "Remove": "red", "Import": "cyan", "Dynamic": "magenta"}
FAILED_EVENTS_SHOWN = 20


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


def events_command(stack_name: str, region: str) -> str:
    """The AWS CLI command that lists every event of the stack."""
    return f"aws cloudformation describe-stack-events --stack-name {stack_name} --region {region}"


def failure_report(headline: str, events: Sequence[dict], stack_name: str, region: str,
                   unreadable: Exception | None = None) -> str:
    """The headline, one line per failed event (at most FAILED_EVENTS_SHOWN), then the events command."""
    lines = [headline]
    if unreadable is not None:
        lines.append(f"  (could not read the stack's events: {unreadable})")
    for event in events[:FAILED_EVENTS_SHOWN]:
        lines.append(f"  {event.get('LogicalResourceId', '?')} ({event.get('ResourceType', '?')}): "
                     f"{event.get('ResourceStatus')}: {event.get('ResourceStatusReason', '')}")
    if len(events) > FAILED_EVENTS_SHOWN:
        lines.append(f"  ... and {len(events) - FAILED_EVENTS_SHOWN} more failed events")
    if not events:
        lines.append("  (no failed events were recorded)")
    lines.append(f"See every event: {events_command(stack_name, region)}")
    return "\n".join(lines)
