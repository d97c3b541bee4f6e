"""The gate's DAG checks, per DAG file, from the JUnit XML of a DAG lane (pure).

The lane is pytest over ``tests/dags/test_dag_integrity.py`` (integrity, policy, templates:
``test_dag_file[<file>]``) and ``tests/dags/test_dag_runs.py`` (every DAG run with ``dag.test()``
on Postgres: ``test_dag_runs_to_success[<file>]``). Each becomes a :class:`Check` of its file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree  # noqa: S405 - our own pytest's report, not foreign input
from dataclasses import dataclass, field

CHECKS = {"test_dag_file": "integrity", "test_dag_runs_to_success": "run"}
_CASE = re.compile(r"^(\w+)\[(.+)\]$")
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Check:
    status: str  # ok | failed | skipped
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


def _outcome(case: ElementTree.Element) -> Check:
    for tag, status in (("failure", "failed"), ("error", "failed"), ("skipped", "skipped")):
        node = case.find(tag)
        if node is not None:
            message = (node.get("message") or node.text or "").strip()
            if status == "skipped":
                message = re.sub(r"^Skipped: ", "", message)
            return Check(status, clip(message))
    return Check("ok")


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
            if outcome.status == "failed" and (old is None or old.status != "failed"):
                found.append((file, name, outcome))
    return found
