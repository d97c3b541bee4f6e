"""Trigger a DAG run through the REST API and follow it to its end state; a failed run says why.

While it runs, each task's state change is printed as it is seen (:class:`Narrator`): the time, the task, its
new state and, for a task with retries, the attempt; a failed attempt that will be retried says when the
next one may start (the task's ``retry_delay`` after the attempt ended, as Airflow computes it).

For each failed task the run prints its exception (from the task log's structured ``error_detail``),
where in the DAG folder's code it was raised, and the last lines of its log, read through the REST
API as the UI reads them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rich.table import Table

from airstack.dagtools.runs import TaskFailure, failure_lines, frame_origin
from airstack.errors import AirstackError

FINISHED = {"success", "failed"}
ENDED = {"success", "failed", "up_for_retry"}  # an attempt's end: it ran from its start_date to its end_date
LOG_LINES = 20
# Structured log events that frame a task's log but say nothing about it.
_FRAMING = ("::group::", "::endgroup::")


def _stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")  # the user's local time


def retry_window(ended: datetime, try_number: int, task: dict) -> tuple[datetime, datetime] | None:
    """When the next attempt may start, from the task's ``retry_delay`` and ``retry_exponential_backoff`` (the REST
    API's task fields) as Airflow computes it: (earliest, latest); with exponential backoff Airflow adds a per-try
    spread of up to the delay itself. None: the task has no delay."""
    delay = task.get("retry_delay")
    if not delay:
        return None
    seconds = timedelta(days=delay.get("days", 0), seconds=delay.get("seconds", 0),
                        microseconds=delay.get("microseconds", 0)).total_seconds()
    multiplier = float(task.get("retry_exponential_backoff") or 0)
    if multiplier in (0.0, 1.0) or multiplier < 0:
        return ended + timedelta(seconds=seconds), ended + timedelta(seconds=seconds)
    least = max(1, math.ceil(seconds * multiplier ** (max(try_number, 1) - 1)))
    return ended + timedelta(seconds=least), ended + timedelta(seconds=2 * least - 1)


def narrate(ti: dict, task: dict | None = None) -> tuple[datetime | None, str]:
    """One task instance's state as a line, and its time (when it was scheduled, queued, started or ended; None:
    the API gives none for this state)."""
    state = ti["state"]
    index = ti.get("map_index")
    label = ti["task_id"] + (f"[{index}]" if index is not None and index >= 0 else "")
    attempt = f" (attempt {ti.get('try_number')} of {ti['max_tries'] + 1})" if ti.get("max_tries") else ""
    # Its own time: queued again, the last attempt's end_date is still set.
    when = _stamp(ti.get({"running": "start_date", "queued": "queued_when", "scheduled": "scheduled_when"}.get(
        state, "end_date" if state in ENDED else "")))
    if state != "up_for_retry":
        return when, f"{label} {state}{attempt}"
    window = retry_window(when, ti.get("try_number") or 1, task or {}) if when else None
    retry = "" if window is None else f"; retrying at {_clock(window[0])}" if window[0] == window[1] \
        else f"; retrying between {_clock(window[0])} and {_clock(window[1])}"
    return when, f"{label} failed{attempt}{retry}"


@dataclass
class Narrator:
    """Each task instance's state change, once, as a line: ``21:13:44 t failed (attempt 1 of 2); retrying at
    21:13:49``. A change is a new state or a new attempt. An attempt that started and ended between two looks is
    told from its start and end dates (running, then how it ended); a queued state that came and went is not."""

    seen: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    ran: set[tuple[str, int, int]] = field(default_factory=set)  # (task, map index, attempt) told as running

    def changes(self, tis: list[dict]) -> list[dict]:
        """The task instances whose state or attempt changed since the last call (and remembered)."""
        out = []
        for ti in tis:
            key, now = (ti["task_id"], ti.get("map_index", -1)), (ti.get("state"), ti.get("try_number") or 0)
            if now[0] is not None and self.seen.get(key) != now:
                out.append(ti)
            self.seen[key] = now
        return out

    def _unseen_runs(self, changed: list[dict]) -> list[dict]:
        """For each attempt that ended unseen as running: the running it had (from its start_date)."""
        runs = []
        for ti in changed:
            attempt = (ti["task_id"], ti.get("map_index", -1), ti.get("try_number") or 0)
            if ti["state"] == "running" or (ti["state"] in ENDED and ti.get("start_date") and attempt not in self.ran):
                if ti["state"] != "running":
                    runs.append({**ti, "state": "running"})
                self.ran.add(attempt)
        return runs

    def lines(self, changed: list[dict], tasks: dict[str, dict], seen_at: datetime) -> list[str]:
        """``changed`` as lines, in the order they happened (``tasks``: the REST API's task fields, by task id)."""
        told = [narrate(ti, tasks.get(ti["task_id"])) for ti in self._unseen_runs(changed) + changed]
        told = [(when or seen_at, line) for when, line in told]
        return [f"{_clock(when)} {line}" for when, line in sorted(told, key=lambda item: item[0])]


def failure_from_log(task_id: str, state: str, messages: list[dict], dags_folder: Path,
                     lines: int = LOG_LINES) -> TaskFailure:
    """A failed task's exception, origin and last log lines, from its structured log (the REST API's ``content``)."""
    failure = TaskFailure(task_id, state)
    errors = [m for m in messages if m.get("error_detail")]
    if errors:
        chain = errors[-1]["error_detail"]  # the raised exception first, then its causes (structlog's order)
        failure.error = f"{chain[0].get('exc_type')}: {chain[0].get('exc_value')}"
        failure.where = next((w for stack in chain if (w := _origin(stack, dags_folder, own_only=True))),
                             _origin(chain[0], dags_folder))
    text = [_line(m) for m in messages if m.get("timestamp") and not str(m.get("event", "")).startswith(_FRAMING)]
    failure.log_tail = text[-lines:]
    return failure


def _origin(stack: dict, dags_folder: Path, own_only: bool = False) -> str:
    """A structlog stack's frames (dicts), placed by :func:`airstack.dagtools.runs.frame_origin`."""
    frames = [(f.get("filename", ""), f.get("lineno"), f.get("name")) for f in stack.get("frames") or []]
    return frame_origin(frames, dags_folder, own_only)


def _line(message: dict) -> str:
    level = str(message.get("level", "")).upper()
    event = str(message.get("event", ""))
    if message.get("logger") == "task.stdout" or not level:
        return event
    detail = (message.get("error_detail") or [{}])[0]
    suffix = f": {detail.get('exc_type')}: {detail.get('exc_value')}" if detail.get("exc_type") else ""
    return f"{level} {event}{suffix}"


def _failures(client, dag_id: str, run_id: str, tasks: list[dict], dags_folder: Path) -> list[TaskFailure]:
    out = []
    for ti in sorted(tasks, key=lambda t: t["task_id"]):
        if ti["state"] != "failed":
            continue
        response = client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/"
                              f"{max(1, ti.get('try_number') or 1)}", params={"full_content": "true"},
                              headers={"Accept": "application/json"})
        messages = response.json().get("content", []) if response.status_code == 200 else []
        out.append(failure_from_log(ti["task_id"], ti["state"], messages if isinstance(messages, list) else [],
                                    dags_folder))
    return out


def _wait_for_dag(client, dag_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/dags/{dag_id}")
        if response.status_code == 200:
            return
        time.sleep(0.5)
    errors = client.get("/importErrors").json().get("import_errors", [])
    hint = f"; import errors: {[e['filename'] for e in errors]}" if errors else ""
    raise AirstackError(f"DAG {dag_id!r} is not known to the local Airflow after {timeout:g} s{hint}")


def follow_run(api_url: str, dag_id: str, timeout: float, console, dags_folder: Path | None = None,
               as_json: bool = False) -> int:
    """Trigger ``dag_id``, follow the run to its end, print its tasks (a table, or JSON on stdout) and each
    failed task's exception and log tail; 0 on success, 1 on failure."""
    import httpx

    from airstack.localenv.health import api_client, health

    unhealthy = ", ".join(f"{c}: {s}" for c, s in health(api_url).items() if s != "healthy")
    if unhealthy:
        raise AirstackError(f"the local Airflow at {api_url} is not healthy ({unhealthy}): "
                            "`nox -s status`, `nox -s logs`, `nox -s restart`")
    try:
        with api_client(api_url) as client:
            _wait_for_dag(client, dag_id, 60)
            client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
            created = client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
            created.raise_for_status()
            run_id = created.json()["dag_run_id"]
            if not as_json:
                console.print(f"{dag_id}: run {run_id} queued")
            state, tasks = _follow(client, dag_id, run_id, timeout, None if as_json else console)
            failures = _failures(client, dag_id, run_id, tasks, dags_folder or Path("dags")) \
                if state == "failed" else []
    except httpx.HTTPError as exc:
        raise AirstackError(f"the local Airflow at {api_url} does not answer ({type(exc).__name__}): "
                            "is it up? `nox -s status`") from None
    if as_json:
        print(json.dumps({"dag_id": dag_id, "run_id": run_id, "state": state,
                          "tasks": [{"task_id": t["task_id"], "state": t["state"]}
                                    for t in sorted(tasks, key=lambda t: t["task_id"])],
                          "failures": [asdict(f) for f in failures]}, indent=2))
    else:
        _print_run(console, dag_id, run_id, state, tasks, failures)
    if state not in FINISHED:
        raise AirstackError(f"{dag_id} run {run_id} did not finish within {timeout:g} s (state {state})")
    return 0 if state == "success" else 1


UNANSWERED = 120.0  # seconds a run's API may stay silent (each request waits 30 s) before `run` gives up on it


def _follow(client, dag_id: str, run_id: str, timeout: float, console) -> tuple[str, list[dict]]:
    """Poll the run until it ends or ``timeout``; each task's state change printed on ``console`` (None: quiet).
    The run's last state and its task instances."""
    from airstack.localenv.health import get_all

    import httpx

    narrator, task_fields = Narrator(), {}
    deadline, state, tasks = time.monotonic() + timeout, "queued", []
    answered = time.monotonic()
    while True:
        asked_at = datetime.now().astimezone()  # a state without a time of its own: when it was asked for
        try:
            state = client.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            tasks = get_all(client, f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances", limit=1000)
            answered = time.monotonic()
        except httpx.TransportError:  # a busy machine: one slow answer is no news, a silent API is an error
            if time.monotonic() - answered > UNANSWERED or time.monotonic() > deadline:
                raise
            time.sleep(1)
            continue
        changed = narrator.changes(tasks)
        for ti in changed:
            if ti["state"] == "up_for_retry" and ti["task_id"] not in task_fields:
                task_fields[ti["task_id"]] = client.get(f"/dags/{dag_id}/tasks/{ti['task_id']}").json()
        if console is not None:
            for line in narrator.lines(changed, task_fields, asked_at):
                console.print(line, markup=False, highlight=False)
        if state in FINISHED or time.monotonic() > deadline:
            return state, tasks
        time.sleep(1)


def _print_run(console, dag_id: str, run_id: str, state: str, tasks: list[dict], failures: list[TaskFailure]) -> None:
    table = Table(title=f"{dag_id} {run_id}: {state}", title_justify="left")
    table.add_column("task")
    table.add_column("state")
    for ti in sorted(tasks, key=lambda t: t["task_id"]):
        table.add_row(ti["task_id"], str(ti["state"]))
    console.print(table)
    for failure in failures:
        console.print("\n".join(failure_lines(failure)), markup=False, highlight=False)
