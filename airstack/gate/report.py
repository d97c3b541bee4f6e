"""What each lane of the gate checked, and what the gate's verdict is (pure; airstack.gate.testrun runs the lanes).

Each lane writes a report (JSON) of what it checked: the pytest lanes through airstack.gate.pytest_tally, the
lint and settings lanes with ``--report FILE``. A report holds ``tally`` (:meth:`airstack.verdict.Tally.as_dict`),
``checked`` (what was looked at, for example ``flake8 212 files``) and ``empty_by_design`` (the reason the
selection was empty by design, ``nothing affected by the change since REF``, else '').

:func:`settle` makes a lane's verdict from its exit code and report. A lane whose exit code its report does not
explain could not run: no report, pytest's exit 5 (no tests collected) on a selection that was not empty by
design, or a non-zero exit with nothing failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from airstack.verdict import FAILED, INCOMPLETE, OK, PARTIAL, Tally, capability_of, exit_code, verdict, worst

NO_TESTS_COLLECTED = 5  # pytest's exit code when a selection leaves nothing
PYTEST_EXITS = {2: "pytest was interrupted", 3: "pytest's internal error", 4: "pytest's usage error",
                NO_TESTS_COLLECTED: "no tests collected (pytest exit 5): the selection is empty"}
COLOURS = {OK: "green", PARTIAL: "yellow", INCOMPLETE: "red", FAILED: "red"}


@dataclass
class LaneResult:
    """A lane's verdict: its word, its counts, what it looked at."""

    name: str
    word: str
    tally: Tally
    seconds: float = 0.0
    code: int | None = None
    what: str = ""
    checked: str = ""
    note: str = ""  # an empty selection by design: 'nothing affected by the change since REF'
    reasons: list[str] = field(default_factory=list)


def read_report(path: Path | None) -> dict | None:
    """A lane's report, or None where it wrote none (or not one that reads)."""
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("tally"), dict) else None


def settle(name: str, code: int | None, report: Mapping | None, require: Iterable[str] = (),
           pytest: bool = False) -> LaneResult:
    """The lane's verdict from its exit code and its report (see the module's docstring)."""
    tally = Tally.from_dict(report["tally"]) if report else Tally()
    checked = str(report.get("checked", "")) if report else ""
    by_design = str(report.get("empty_by_design", "")) if report else ""
    if code is None:
        tally.add_not_run("the lane did not finish")
    elif report is None:
        tally.add_not_run(f"the lane ended (exit {code}) without saying what it checked")
    elif tally.empty and by_design and code == 0:
        return LaneResult(name, OK, tally, code=code, checked=checked, note=by_design, reasons=[by_design])
    elif code != 0 and not tally.failed:
        # Exit 5 with nothing counted, or a non-zero exit that nothing counted explains.
        tally.add_not_run(PYTEST_EXITS.get(code, f"exit {code}") if pytest else f"exit {code} with nothing failed")
    word = verdict(tally, require)
    return LaneResult(name, word, tally, code=code, checked=checked, reasons=tally.reasons())


def gate_word(lanes: list[LaneResult]) -> str:
    return worst(lane.word for lane in lanes)


def gate_exit_code(lanes: list[LaneResult]) -> int:
    return exit_code(gate_word(lanes))


def last_line(lanes: list[LaneResult]) -> str:
    """``gate: partial: 41 passed, 18 could not run (lacks official-chart: ...)``: the verdict and its counts."""
    word = gate_word(lanes)
    counted = [lane for lane in lanes if not lane.note]
    if not counted:
        notes = sorted({lane.note for lane in lanes})
        return f"gate: {word}: {'; '.join(notes)}"
    total = Tally()
    for lane in counted:
        total = total.merge(lane.tally)
    why = [f"lacks {capability_of(r)}: {r.split(':', 1)[1].strip()}" for r in total.lacking]
    why += list(total.not_run)
    shown = "; ".join(why[:3]) + (f"; and {len(why) - 3} more" if len(why) > 3 else "")
    empty = [lane for lane in lanes if lane.note]
    return (f"gate: {word}: {total.counts()}" + (f" ({shown})" if why else "")
            + "".join(f"; {lane.name}: {lane.note}" for lane in empty))


def row(lane: LaneResult) -> tuple[str, str, str, str]:
    """One line of the lane table (rich markup): lane, result, seconds, and what it checked: the counts, what the
    lane checks, what it looked at, and each distinct reason a check was skipped or could not run."""
    from rich.markup import escape

    counts = "nothing to check" if lane.note else lane.tally.counts()
    details = [f"[bold]{counts}[/]", f"[dim]{escape(lane.what)}[/]" if lane.what else ""]
    details.append(f"[dim]{escape(lane.checked)}[/]" if lane.checked else "")
    for reason in lane.reasons:
        details.append(f"[{'yellow' if capability_of(reason) or reason == lane.note else 'dim'}]{escape(reason)}[/]")
    return lane.name, f"[{COLOURS[lane.word]}]{lane.word}[/]", f"{lane.seconds:.1f}", "\n".join(d for d in details if d)


def bench_record(lanes: list[LaneResult]) -> dict:
    """What ``nox -s bench -- test-suite`` reads (AIRSTACK_GATE_REPORT): each lane's seconds, exit code, counts."""
    return {lane.name: {"seconds": round(lane.seconds, 2), "exit_code": lane.code, "result": lane.word,
                        "passed": lane.tally.passed, "failed": lane.tally.failed, "skipped": lane.tally.skipped,
                        "could_not_run": lane.tally.could_not_run}
            for lane in lanes}
