"""The gate's DAG checks, per DAG file, from the JUnit XML of a DAG lane (pure).

The lane is pytest over ``tests/dags/test_dag_integrity.py`` (integrity, policy, templates:
``test_dag_file[<file>]``) and ``tests/dags/test_dag_runs.py`` (every DAG run with ``dag.test()``
on Postgres: ``test_dag_runs_to_success[<file>]``). Each becomes a :class:`Check` of its file: ``ok``,
``failed`` (the DAG's failure), ``skipped`` (by design, with the reason) or ``not_run``: the check could not
run (its setup failed, such as the Postgres it needs, or the DAG-run harness could not run it: a failure
whose message is airstack.verdict's ``could not run: <reason>``). A check that could not run is neither a
pass nor a failure, and never a "no change".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree  # noqa: S405 - our own pytest's report, not foreign input
from dataclasses import dataclass, field

from airstack.verdict import Tally, not_run_reason

CHECKS = {"test_dag_file": "integrity", "test_dag_runs_to_success": "run"}
_CASE = re.compile(r"^(\w+)\[(.+)\]$")
_SETUP = re.compile(r'^failed on (setup|teardown) with "(.*)"$', re.S)
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)+(?=[A-Za-z_]\w*:)")  # airstack.errors.PostgresUnavailableError:
OK, FAILED, SKIPPED, NOT_RUN = "ok", "failed", "skipped", "not_run"
SHOWN = {NOT_RUN: "could not run"}
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Check:
    status: str  # ok | failed | skipped | not_run
    message: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message}


@dataclass
class LaneResult:
    """One DAG lane (the current lock's or the candidate's): per file, per check; or why it did not run."""

    files: dict[str, dict[str, Check]] = field(default_factory=dict)
    error: str = ""  # the lane itself failed (no report): its last line
    seconds: float = 0.0
    ran: bool = True  # False: no package moved (a chart-only rehearsal), so there is nothing to compare

    def check(self, file: str, name: str) -> Check | None:
        return self.files.get(file, {}).get(name)

    def tally(self) -> Tally:
        """Its checks counted: passed, failed, skipped (with reasons), could not run (with reasons)."""
        tally = Tally()
        if self.error:
            tally.add_not_run(f"the DAG lane did not run: {self.error}")
        for checks in self.files.values():
            for check in checks.values():
                if check.status == OK:
                    tally.passed += 1
                elif check.status == FAILED:
                    tally.failed += 1
                elif check.status == SKIPPED:
                    tally.add_skip(headline(check.message) or "no reason given")
                else:
                    tally.add_not_run(headline(check.message) or "no reason given")
        return tally

    def to_dict(self) -> dict:
        return {"ran": self.ran, "error": self.error, "seconds": round(self.seconds, 1),
                "files": {f: {n: c.to_dict() for n, c in checks.items()} for f, checks in self.files.items()}}


def clip(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` within ``limit`` characters: its first line and its end (where a traceback's error is)."""
    if len(message) <= limit:
        return message
    first = message.splitlines()[0][:limit // 4]
    return f"{first}\n…\n{message[-(limit - len(first) - 3):]}"


def headline(message: str) -> str:
    """One line for a failure: its first line, or for a traceback what precedes it and its last line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if "Traceback (most recent call last)" in lines[0] and len(lines) > 1:
        return f"{lines[0].split('Traceback (most recent call last)')[0].strip()} {lines[-1]}".strip()
    return lines[0]


def setup_reason(message: str) -> str:
    """pytest's ``failed on setup with "airstack.errors.X: why"`` as ``setup: X: why``."""
    match = _SETUP.match(message.strip())
    if not match:
        return message
    inner = match.group(2).strip().removeprefix("Failed: ")
    return f"{match.group(1)}: {_EXCEPTION.sub('', inner)}"


def _outcome(case: ElementTree.Element) -> Check:
    for tag, status in (("failure", FAILED), ("error", NOT_RUN), ("skipped", SKIPPED)):
        node = case.find(tag)
        if node is None:
            continue
        message = (node.get("message") or node.text or "").strip()
        if status == SKIPPED:
            message = re.sub(r"^Skipped: ", "", message)
        elif status == NOT_RUN:  # an error: the test's setup (or teardown) failed, not the check
            message = setup_reason(message)
        elif (reason := not_run_reason(message)) is not None:  # the harness could not run it
            status, message = NOT_RUN, reason
        return Check(status, clip(message))
    return Check(OK)


def parse_junit(xml_text: str) -> dict[str, dict[str, Check]]:
    """``{DAG file: {"integrity"|"run": Check}}`` from pytest's ``--junitxml`` output.

    A test that failed in its setup and its call is reported twice; the failure wins.
    """
    files: dict[str, dict[str, Check]] = {}
    for case in ElementTree.fromstring(xml_text).iter("testcase"):  # noqa: S314
        match = _CASE.match(case.get("name", ""))
        if not match or match.group(1) not in CHECKS:
            continue
        checks = files.setdefault(match.group(2), {})
        name, outcome = CHECKS[match.group(1)], _outcome(case)
        if name not in checks or checks[name].status == "ok":
            checks[name] = outcome
    return dict(sorted(files.items()))


def regressions(before: LaneResult, after: LaneResult) -> list[tuple[str, str, Check]]:
    """(file, check, the candidate's failure) for each check that does not fail now and fails on the candidate."""
    found = []
    for file, checks in after.files.items():
        for name, outcome in checks.items():
            old = before.check(file, name)
            if outcome.status == FAILED and (old is None or old.status != FAILED):
                found.append((file, name, outcome))
    return found
