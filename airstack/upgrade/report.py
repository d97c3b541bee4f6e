"""The rehearsal's report (pure): the model, its JSON, its Markdown, the terminal table, what to change.

Its verdict is airstack.verdict's word: ``failed`` (a regression, an actionable config-lint or ruff finding,
a chart problem), ``incomplete`` (something could not run: a DAG check's setup, the harness, a lane, config
lint, ruff, the chart's schema), else ``ok``. Only ``ok`` lets ``--apply`` write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from airstack import verdict as words
from airstack.upgrade import dbrows
from airstack.upgrade.dagresults import FAILED, NOT_RUN, SHOWN, SKIPPED, Check, LaneResult, headline, regressions
from airstack.upgrade.locks import PackageDiff

CHECK_NAMES = {"integrity": "integrity, policy, templates", "run": "dag.test() on Postgres"}
# `airflow config lint`'s note on an option whose default changed, when the configuration sets it anyway.
SET_EXPLICITLY = re.compile(r"^Changed default value of .* You currently have .+ set\.?$")


UNCHANGED = "fails now and on the target (no change)"
# How steps.config_lint and steps.ruff say that they could not run (a finding that is not one).
NOT_RUN_FINDINGS = ("Airflow does not start with this configuration", "ruff failed")


def actionable(finding: str) -> bool:
    """Whether a config lint finding asks for a change (a changed default that we set explicitly does not)."""
    return not SET_EXPLICITLY.match(finding.strip()) and not finding.startswith(NOT_RUN_FINDINGS)


@dataclass
class ChartCheck:
    version: str
    available: bool
    note: str = ""  # where the schema came from, or why it cannot be had
    problems: dict[str, list[str]] = field(default_factory=dict)  # environment -> one line each

    def to_dict(self) -> dict:
        return {"version": self.version, "available": self.available, "note": self.note, "problems": self.problems}


@dataclass
class Report:
    title: str
    moves: list[tuple[str, str, str]]  # (package, current pin, target)
    packages: PackageDiff
    before: LaneResult
    after: LaneResult
    config_lint: dict[str, list[str]] = field(default_factory=dict)  # environment -> findings
    ruff: list[str] = field(default_factory=list)
    chart: ChartCheck | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)  # files --apply wrote
    database: dbrows.DbRehearsal | None = None  # --db-rows

    @property
    def regressions(self) -> list[tuple[str, str, Check]]:
        return regressions(self.before, self.after)

    @property
    def findings(self) -> list[str]:
        """What the target's config lint and ruff ask to change (informational notes and failures to run left out)."""
        lint = [f"{env} configuration: {f}" for env, found in self.config_lint.items() for f in found if actionable(f)]
        return lint + [f"ruff: {f}" for f in self.ruff if actionable(f)]

    @property
    def tally(self) -> words.Tally:
        """The rehearsal's checks: each DAG check (a regression fails, a side that could not run makes it not
        run), each environment's config lint, ruff, the chart; findings fail."""
        tally = words.Tally()
        if self.after.ran:
            for which, lane in (("current", self.before), ("target", self.after)):
                if lane.error:
                    tally.add_not_run(f"{which}: the DAG lane did not run: {lane.error}")
            for file, name, old, new, _ in dag_checks(self):
                _count_dag_check(tally, old, new)
        for env, found in self.config_lint.items():
            _count_step(tally, f"config lint ({env})", found)
        _count_step(tally, "ruff", self.ruff)
        if self.chart and not self.chart.available:
            tally.add_not_run(self.chart.note)
        elif self.chart:
            problems = sum(len(p) for p in self.chart.problems.values())
            tally.failed, tally.passed = tally.failed + problems, tally.passed + (not problems)
        if self.database:
            dbrows.count(self.database, tally)
        return tally

    @property
    def verdict(self) -> str:
        return words.verdict(self.tally)

    @property
    def ok(self) -> bool:
        """Every check ran; nothing that passes today fails on the target; no finding is left; the chart fits."""
        return self.verdict == words.OK


def _count_dag_check(tally: words.Tally, old: Check | None, new: Check | None) -> None:
    sides = [(which, c) for which, c in (("current", old), ("target", new)) if c is not None]
    not_run = [f"{which}: {headline(c.message)}" for which, c in sides if c.status == NOT_RUN]
    if not_run or new is None:
        tally.add_not_run(not_run[0] if not_run else "target: the check did not run")
    elif new.status == FAILED and (old is None or old.status != FAILED):
        tally.failed += 1
    elif new.status == SKIPPED:
        tally.add_skip(headline(new.message) or "no reason given")
    elif new.status == FAILED:  # and now: not a regression, and not a pass either
        tally.add_skip(UNCHANGED)
    else:
        tally.passed += 1


def _count_step(tally: words.Tally, step: str, found: list[str]) -> None:
    broken = [f for f in found if f.startswith(NOT_RUN_FINDINGS)]
    if broken:
        tally.add_not_run(f"{step}: {headline(broken[0])}")
        return
    count = sum(actionable(f) for f in found)
    tally.failed, tally.passed = tally.failed + count, tally.passed + (not count)


def dag_checks(report: Report) -> list[tuple[str, str, Check | None, Check | None, str]]:
    """(file, check, before, after, the candidate's message, or today's when only that fails) per DAG check."""
    rows = []
    for file in sorted(set(report.before.files) | set(report.after.files)):
        for name in CHECK_NAMES:
            old, new = report.before.check(file, name), report.after.check(file, name)
            if old is None and new is None:
                continue
            message = new.message if new and new.status != "ok" else (old.message if old else "")
            rows.append((file, name, old, new, message))
    return rows


def why(report: Report) -> str:
    """What makes the verdict what it is, in a few words."""
    tally, parts = report.tally, []
    if report.regressions:
        parts.append(f"{len(report.regressions)} regression(s)")
    if report.findings:
        parts.append(f"{len(report.findings)} actionable config lint/ruff finding(s) left")
    moved = dbrows.todo(report.database) if report.database else []
    parts += ["the schema move to the target failed on the seeded database"] if moved else []
    if tally.failed > len(report.regressions) + len(report.findings) + len(moved):
        parts.append("the chart's schema does not take our values")
    not_run = _not_run(tally)
    if not_run:
        parts.append(f"{not_run} check(s) could not run")
    if not parts and report.verdict == words.OK:
        unchanged = tally.skip_reasons.get(UNCHANGED, 0)
        extra = [f"{n} {what}" for n, what in ((tally.skipped - unchanged, "skipped by design"),
                                               (unchanged, "fail now and on the target")) if n]
        return (f"{', '.join([f'{tally.passed} checks passed', *extra])}; nothing that passes now fails on the "
                "target; no finding left")
    return ", ".join(parts) or "nothing was checked"


def refusal(report: Report) -> str:
    """Why ``--apply`` writes nothing, in one line ("" when it may)."""
    return "" if report.ok else f"not applied: the verdict is {report.verdict}: {why(report)}"


def could_not_run(report: Report) -> list[str]:
    """What could not run, per side and step: ``target: 8 × could not run: setup: PostgresUnavailableError: …``."""
    lines = []
    if report.after.ran:
        for which, lane in (("current lock", report.before), ("target", report.after)):
            lines += [f"{which}: {reason}" for reason in lane.tally().reasons() if " × skipped: " not in reason]
    lines += [f"{n} × could not run: {reason}" for reason, n in report.tally.not_run.items()
              if not reason.startswith(("current: ", "target: "))]
    return lines


def _not_run(tally: words.Tally) -> int:
    return sum(tally.not_run.values()) + sum(tally.lacking.values())


def side_counts(lane: LaneResult) -> str:
    """``4 passed, 0 failed, 4 could not run`` (and skipped, when some were)."""
    tally = lane.tally()
    skipped = f", {tally.skipped} skipped" if tally.skipped else ""
    return f"{tally.passed} passed, {tally.failed} failed{skipped}, {_not_run(tally)} could not run"


def _shown(check: Check | None) -> str:
    return "-" if check is None else SHOWN.get(check.status, check.status)


def dag_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """(file, check, before, after, the candidate's message, or today's when only that fails) per DAG check."""
    return [(f, n, _shown(old), _shown(new), m) for f, n, old, new, m in dag_checks(report)]


def what_to_change(report: Report) -> list[str]:
    """A short list of what stands between the repository and the target."""
    todo = [f"{file}: {CHECK_NAMES[name]} fails on the target: {headline(check.message)}"
            for file, name, check in report.regressions]
    todo += report.findings
    if report.chart:
        todo += [f"chart {report.chart.version} values ({env}): {p}" for env, ps in report.chart.problems.items()
                 for p in ps]
    return todo + (dbrows.todo(report.database) if report.database else [])


def to_dict(report: Report) -> dict:
    return {"title": report.title, "verdict": report.verdict, "ok": report.ok,
            "counts": {"checks": _counts(report.tally), "before": _counts(report.before.tally()),
                       "after": _counts(report.after.tally())},
            "moves": [{"package": p, "current": c, "target": t} for p, c, t in report.moves],
            "packages": report.packages.to_dict(),
            "dags": {"before": report.before.to_dict(), "after": report.after.to_dict(),
                     "regressions": [{"file": f, "check": n, "message": c.message} for f, n, c in report.regressions]},
            "config_lint": report.config_lint, "ruff": report.ruff,
            "chart": report.chart.to_dict() if report.chart else None,
            "what_to_change": what_to_change(report), "seconds": report.seconds, "applied": report.applied,
            "database": dbrows.to_dict(report.database) if report.database else None}


def _counts(tally: words.Tally) -> dict:
    return {"passed": tally.passed, "failed": tally.failed, "skipped": tally.skipped,
            "could_not_run": _not_run(tally), "reasons": tally.reasons()}


def _package_lines(diff: PackageDiff) -> list[str]:
    lines = [f"| {name} | up | {old} | {new} |" for name, old, new in diff.up]
    lines += [f"| {name} | down | {old} | {new} |" for name, old, new in diff.down]
    lines += [f"| {name} | added | | {version} |" for name, version in diff.added]
    lines += [f"| {name} | removed | {version} | |" for name, version in diff.removed]
    return ["| package | change | current | target |", "|---|---|---|---|", *lines] if lines else ["No package moves."]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:300]


def _dag_lines(report: Report) -> list[str]:
    if not report.after.ran:
        return ["Not run: no package moves (the DAGs run on the current lock in `nox -s test`)."]
    lines = ["| DAG file | check | current | target | failure |", "|---|---|---|---|---|"]
    lines += [f"| {f} | {CHECK_NAMES[n]} | {b} | {a} | {_cell(headline(m))} |" for f, n, b, a, m in dag_rows(report)]
    counts = ["", "| | passed | failed | skipped | could not run |", "|---|---|---|---|---|"]
    for which, lane in (("current lock", report.before), ("target", report.after)):
        tally = lane.tally()
        counts.append(f"| {which} | {tally.passed} | {tally.failed} | {tally.skipped} | {_not_run(tally)} |")
    failures = [f"<details><summary>{file}: {CHECK_NAMES[name]} on the target</summary>\n\n```\n{check.message}\n```\n"
                "</details>" for file, name, check in report.regressions]
    return lines + counts + ([""] + failures if failures else [])


def _findings(title: str, findings: dict[str, list[str]] | list[str]) -> list[str]:
    if isinstance(findings, list):
        return [f"### {title}", "", *([f"- {f}" for f in findings] or ["None."]), ""]
    lines = [f"### {title}", ""]
    for env, items in findings.items():
        lines += [f"- **{env}**: " + ("none" if not items else ""),
                  *[f"  - {i}" + ("" if actionable(i) else " (informational: set explicitly)") for i in items]]
    return lines + [""]


def to_markdown(report: Report) -> str:
    todo = what_to_change(report)
    lines = [f"# Upgrade rehearsal: {report.title}", "",
             f"**Verdict: {report.verdict}**: {why(report)}", "",
             "## What to change", "", *([f"- {t}" for t in todo] or ["Nothing found."]), "",
             *(["## Could not run", "", *[f"- {line}" for line in could_not_run(report)], ""]
               if could_not_run(report) else []),
             "## Packages", "", *_package_lines(report.packages), "",
             "## DAG checks (current lock → target)", "", *_dag_lines(report), "",
             "## Configuration", "", *_findings("airflow config lint (the target's Airflow)", report.config_lint),
             *_findings("ruff AIR3 (the target's ruff)", report.ruff)]
    if report.chart:
        lines += [f"## Chart {report.chart.version}", "", report.chart.note, "",
                  *_findings("values against values.schema.json", report.chart.problems)]
    if report.database:
        lines += [f"## Metadata database ({report.database.rows:,} task instances)", "",
                  *[f"- {line}" for line in dbrows.lines(report.database)], ""]
    if report.applied:
        lines += ["## Applied", "", *[f"- {f}" for f in report.applied], ""]
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items())
    return "\n".join([*lines, f"_Steps: {timing}_" if timing else ""]).rstrip() + "\n"


def summary_table(report: Report):
    """The terminal's rich table: one row per area, its result."""
    from rich.table import Table

    table = Table(title=f"nox -s upgrade: {report.title}", title_justify="left")
    table.add_column("area")
    table.add_column("result")
    diff = report.packages
    table.add_row("packages", f"{len(diff.up)} up, {len(diff.down)} down, {len(diff.added)} added, "
                              f"{len(diff.removed)} removed")
    for which, lane in (("DAG checks, current", report.before), ("DAG checks, target", report.after)):
        if not lane.ran:
            table.add_row(which, "not run (no package moves)")
            continue
        counts = f"{side_counts(lane)} ({lane.seconds:.0f} s)"
        table.add_row(which, f"[red]{counts}[/]" if lane.tally().failed or _not_run(lane.tally()) else counts)
    table.add_row("regressions", f"[red]{len(report.regressions)}[/]" if report.regressions else "[green]none[/]")
    lint = [f for findings in report.config_lint.values() for f in findings]
    informational = sum(not actionable(f) for f in lint)
    table.add_row("config lint", f"{len(lint) - informational} finding(s) in {len(report.config_lint)} "
                                 f"environment(s)" + (f", {informational} informational" if informational else ""))
    table.add_row("ruff AIR3", f"{len(report.ruff)} finding(s)")
    if report.chart:
        count = sum(len(v) for v in report.chart.problems.values())
        table.add_row(f"chart {report.chart.version}", f"{count} problem(s)" if report.chart.available
                      else "[red]could not run: its schema cannot be obtained here[/] (see below)")
    if report.database:
        table.add_row("metadata database", dbrows.summary(report.database))
    colour = {words.OK: "green", words.PARTIAL: "yellow"}.get(report.verdict, "red")
    table.add_row("verdict", f"[{colour}]{report.verdict}[/]: {why(report)}")
    return table
