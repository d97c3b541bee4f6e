"""pytest plugin: ``-p airstack.gate.pytest_tally --tally FILE`` writes what the run checked to FILE, as JSON.

The gate's pytest lanes (airstack.gate.testrun) load it. FILE holds an :class:`airstack.verdict.Tally` (passed,
failed, skipped with their reasons, could not run with theirs) and, where ``--changed-since`` left nothing
to run by design, ``empty_by_design``. Per test, the worst of its phases counts:

- a skip (``pytest.skip``, a skip mark) is a skip with its reason, or "could not run" where the reason
  says this machine lacks a capability (:func:`airstack.verdict.lacking`);
- an error while setting a test up (pytest's ERROR) is "could not run: setup failed: <message>", never a
  pass; a failure whose message says it could not run (:func:`airstack.verdict.could_not_run`, the DAG-run
  harness's own failures) is "could not run" too; any other failure in the test or its teardown is a failure;
- an expected failure (xfail) is a skip; a module that fails to collect is "could not run".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airstack.verdict import Tally, not_run_reason

_FINAL = ("failed", "not_run")  # a later phase of the same test does not change these


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tally", metavar="FILE", default=None,
                     help="write the counts of what ran, failed, was skipped or could not run to FILE (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--tally"):
        config.pluginmanager.register(Recorder(Path(config.getoption("--tally"))), "airstack-tally-recorder")


def message(longrepr) -> str:
    """The first line of what a failed or skipped report says (its crash message, or its text)."""
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = (crash.message if crash is not None else str(longrepr or "")).removeprefix("Failed: ")  # pytest.fail
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:600] if lines else "no message"


def outcome(report: pytest.TestReport) -> tuple[str, str] | None:
    """(kind, reason) of one phase's report: kind is passed, failed, skipped or not_run; None: says nothing."""
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "skipped", f"expected to fail: {report.wasxfail or message(report.longrepr)}"
        return ("passed", "") if report.when == "call" else None
    if report.skipped:
        return "skipped", message(report.longrepr)
    if report.failed:
        if report.when == "setup":
            return "not_run", f"setup failed: {message(report.longrepr)}"
        harness = not_run_reason(message(report.longrepr))  # a check that can only fail says it could not run
        return ("not_run", harness) if harness else ("failed", "")
    return ("passed", "") if report.when == "call" else None


def count(outcomes: dict[str, tuple[str, str]], collect_errors: list[str]) -> Tally:
    """The tally of every test's final outcome, and of the modules that failed to collect."""
    tally = Tally()
    for kind, reason in outcomes.values():
        if kind == "passed":
            tally.passed += 1
        elif kind == "failed":
            tally.failed += 1
        elif kind == "skipped":
            tally.add_skip(reason)
        else:
            tally.add_not_run(reason)
    for error in collect_errors:
        tally.add_not_run(error)
    return tally


class Recorder:
    """Notes every phase's outcome and each collection error; writes the tally when the session ends."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.seen: dict[str, tuple[str, str]] = {}  # nodeid -> (kind, reason)
        self.collect_errors: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        new, old = outcome(report), self.seen.get(report.nodeid)
        if new is not None and (old is None or old[0] not in _FINAL):
            self.seen[report.nodeid] = new

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"failed to collect {report.nodeid or 'the session'}: "
                                       f"{message(report.longrepr)}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from airstack.gate.pytest_affected import emptied_by_change

        tally = count(self.seen, self.collect_errors)
        self.target.write_text(json.dumps({"tally": tally.as_dict(),
                                           "empty_by_design": emptied_by_change(session.config)}, indent=1))
