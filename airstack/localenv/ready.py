"""Ready means ready: every DAG file parsed once by this DAG processor, and what it found.

``up`` asks Airflow (the launcher, see launcher.py) which files its DAG processor parses, then
polls the REST API until each of them has been parsed since the processor started: a DAG of the
file with a newer ``last_parsed_time``, or an import error of the file with a newer ``timestamp``.

A file that defines no DAG and raises nothing leaves no trace in Airflow. So the files the API
does not show yet are parsed once more, by the runtime's own Airflow (filecheck.py): a file is
"defines no DAG" only when that parse finds no DAG and no error. A file in which it finds a DAG or
an error stays pending until the DAG processor has recorded it. When to ask is a guess (the DAG
processor looks idle), what a file is never is.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from airstack.errors import AirstackError

# `up`'s exit code when Airflow is up but DAG files fail to import (docs/local-env.md).
IMPORT_ERRORS_EXIT = 3
_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)')


@dataclass
class ParseState:
    dags: dict[str, list[str]] = field(default_factory=dict)  # file -> dag ids parsed since
    errors: dict[str, str] = field(default_factory=dict)  # file -> stack trace, parsed since
    pending: list[str] = field(default_factory=list)  # files not parsed since
    empty: list[str] = field(default_factory=list)  # parsed, no DAG and no error
    # file -> what parsing it found, for a file the processor has not recorded ({"dags": [...], "error": ...})
    found: dict[str, dict] = field(default_factory=dict)


def error_line(file: str, stack_trace: str) -> str:
    """``dags/x.py:LINE: Exception: message``: the deepest frame in ``file`` (else the deepest), and the
    trace's last line."""
    frames = [(m["path"], int(m["line"])) for m in _FRAME.finditer(stack_trace)]
    own = [line for path, line in frames if path.endswith(file)]
    line = own[-1] if own else (frames[-1][1] if frames else None)
    message = next((text.strip() for text in reversed(stack_trace.strip().splitlines()) if text.strip()), "")
    return f"dags/{file}:{line}: {message}" if line is not None else f"dags/{file}: {message}"


def _aware(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def classify(files: list[str], dags: list[dict], errors: list[dict], since: datetime) -> ParseState:
    """Which of ``files`` the REST API shows parsed at or after ``since`` (pure)."""
    state = ParseState()
    fresh_dags: dict[str, list[str]] = {}
    for dag in dags:
        parsed = _aware(dag.get("last_parsed_time"))
        if dag.get("relative_fileloc") and parsed and parsed >= since:
            fresh_dags.setdefault(dag["relative_fileloc"], []).append(dag["dag_id"])
    fresh_errors = {e["filename"]: e.get("stack_trace") or "" for e in errors
                    if (stamp := _aware(e.get("timestamp"))) and stamp >= since}
    for file in files:
        if file in fresh_errors:
            state.errors[file] = fresh_errors[file]
        elif file in fresh_dags:
            state.dags[file] = sorted(fresh_dags[file])
        else:
            state.pending.append(file)
    return state


def decide(files: list[str], dags: list[dict], errors: list[dict], since: datetime,
           parsed: dict[str, dict]) -> ParseState:
    """:func:`classify`, then the files the API does not show: "defines no DAG" where ``parsed`` (filecheck's
    answer) says so; pending, with what ``parsed`` found, where it found a DAG or an error (pure)."""
    state = classify(files, dags, errors, since)
    pending, state.pending = state.pending, []
    for file in pending:
        found = parsed.get(file)
        if found is not None and not found["dags"] and not found["error"]:
            state.empty.append(file)
        else:
            state.pending.append(file)
            if found is not None:
                state.found[file] = found
    return state


def _left(state: ParseState) -> str:
    """The pending files, each with what its own parse found (``a.py (it defines a)``)."""
    def what(file: str) -> str:
        found = state.found.get(file)
        if found is None:
            return file
        return f"{file} (it fails to import)" if found["error"] else f"{file} (it defines {', '.join(found['dags'])})"
    return ", ".join(what(file) for file in state.pending)


class _Asked:
    """One parse of some files in the background (a daemon thread: `up` never waits for it to end)."""

    def __init__(self, parse: Callable[[list[str]], dict[str, dict]], files: list[str]) -> None:
        self.answer: dict[str, dict] | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(parse, files), daemon=True)
        self.thread.start()

    def _run(self, parse, files) -> None:
        try:
            self.answer = parse(files)
        except BaseException as exc:  # noqa: BLE001 - raised again in `up`'s thread
            self.failure = exc

    def result(self) -> dict[str, dict]:
        """What the parse found ({} while it runs); its error, raised again, once it failed."""
        if self.failure is not None:
            raise self.failure
        return self.answer or {}


def _fetch(api_url: str) -> tuple[list[dict], list[dict]]:
    from airstack.localenv.health import api_client, get_all

    with api_client(api_url) as client:  # every page: a folder may hold more DAGs than one page shows
        return get_all(client, "/dags", "dags", limit=1000), get_all(client, "/importErrors", "import_errors",
                                                                     limit=1000)


# The files the DAG processor has not recorded are asked about once it has recorded another and looks idle, or
# after this long whatever it looks like: a folder whose files all define no DAG records nothing, and a
# container's health checks make its DAG processor look busy.
ASK_ANYWAY = 20.0


def wait_parsed(api_url: str, files: list[str], since: datetime, timeout: float, check_alive: Callable[[], None],
                idle: Callable[[], bool | None], parse: Callable[[list[str]], dict[str, dict]],
                interval: float = 0.25, on_poll: Callable[[], None] | None = None) -> ParseState:
    """Poll until every file is parsed since ``since``; raise naming the files left after ``timeout``.
    ``parse`` parses files with the runtime's Airflow (filecheck's answer); it is asked once, about the files the
    API does not show, when ``idle`` says the DAG processor parses nothing right now (None: cannot tell), or
    after ``ASK_ANYWAY`` seconds."""
    import httpx

    started = time.monotonic()
    deadline, asked = started + timeout, None
    while True:
        if on_poll:
            on_poll()
        check_alive()
        try:
            dags, errors = _fetch(api_url)
        except httpx.HTTPError:
            dags, errors = [], []
        state = decide(files, dags, errors, since, asked.result() if asked else {})
        if not state.pending:
            return state
        recorded = len(state.pending) + len(state.empty) < len(files)
        if asked is None and (recorded and idle() is not False or time.monotonic() > started + ASK_ANYWAY):
            asked = _Asked(parse, list(state.pending))
        if time.monotonic() > deadline:
            raise AirstackError(f"the DAG processor has not parsed {_left(state)} after {timeout:g} s: "
                                "`nox -s logs -- dag-processor`")
        time.sleep(interval)


def current(api_url: str) -> ParseState:
    """What the REST API shows now, every DAG and import error (an env that was up already)."""
    dags, errors = _fetch(api_url)
    state = ParseState(errors={e["filename"]: e.get("stack_trace") or "" for e in errors})
    for dag in dags:
        if dag.get("relative_fileloc") and dag["relative_fileloc"] not in state.errors:
            state.dags.setdefault(dag["relative_fileloc"], []).append(dag["dag_id"])
    return state


def summary(state: ParseState) -> list[str]:
    """What ``up`` prints once ready: the DAGs, each import error as ``file:line: message``, files without DAGs."""
    count = sum(len(ids) for ids in state.dags.values())
    lines = [f"{count} DAG{'s' * (count != 1)} from {len(state.dags)} file{'s' * (len(state.dags) != 1)}"
             + (f"; {len(state.errors)} file{'s' * (len(state.errors) != 1)} failed to import:" if state.errors
                else "; no import errors")]
    lines += [f"  {error_line(file, trace)}" for file, trace in sorted(state.errors.items())]
    lines += [f"  dags/{file}: defines no DAG (list it in dags/.airflowignore if it is a helper)"
              for file in state.empty]
    return lines
