"""The rehearsal's report (pure): the model, its JSON, its Markdown, the terminal table, what to change."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from airstack.upgrade.dagresults import Check, LaneResult, headline, regressions
from airstack.upgrade.locks import PackageDiff

CHECK_NAMES = {"integrity": "integrity, policy, templates", "run": "dag.test() on Postgres"}
# `airflow config lint`'s note on an option whose default changed, when the configuration sets it anyway.
SET_EXPLICITLY = re.compile(r"^Changed default value of .* You currently have .+ set\.?$")


def actionable(finding: str) -> bool:
    """Whether a config lint finding asks for a change (a changed default that we set explicitly does not)."""
    return not SET_EXPLICITLY.match(finding.strip())


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

    @property
    def regressions(self) -> list[tuple[str, str, Check]]:
        return regressions(self.before, self.after)

    @property
    def ok(self) -> bool:
        """Nothing that passes today fails on the target, and the target's chart schema takes our values."""
        chart_ok = self.chart is None or (self.chart.available and not any(self.chart.problems.values()))
        return not self.regressions and not self.after.error and chart_ok


def dag_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """(file, check, before, after, the candidate's message, or today's when only that fails) per DAG check."""
    rows = []
    for file in sorted(set(report.before.files) | set(report.after.files)):
        for name in CHECK_NAMES:
            old, new = report.before.check(file, name), report.after.check(file, name)
            if old is None and new is None:
                continue
            message = new.message if new and new.status != "ok" else (old.message if old else "")
            rows.append((file, name, old.status if old else "-", new.status if new else "-", message))
    return rows


def what_to_change(report: Report) -> list[str]:
    """A short list of what stands between the repository and the target."""
    todo = [f"{file}: {CHECK_NAMES[name]} fails on the target: {headline(check.message)}"
            for file, name, check in report.regressions]
    if report.after.error:
        todo.append(f"the DAG checks did not run on the target: {report.after.error}")
    todo += [f"{env} configuration: {finding}" for env, findings in report.config_lint.items() for finding in findings
             if actionable(finding)]
    todo += [f"ruff: {finding}" for finding in report.ruff]
    if report.chart and not report.chart.available:
        todo.append(report.chart.note)
    if report.chart:
        todo += [f"chart {report.chart.version} values ({env}): {p}" for env, ps in report.chart.problems.items()
                 for p in ps]
    return todo


def to_dict(report: Report) -> dict:
    return {"title": report.title, "ok": report.ok,
            "moves": [{"package": p, "current": c, "target": t} for p, c, t in report.moves],
            "packages": report.packages.to_dict(),
            "dags": {"before": report.before.to_dict(), "after": report.after.to_dict(),
                     "regressions": [{"file": f, "check": n, "message": c.message} for f, n, c in report.regressions]},
            "config_lint": report.config_lint, "ruff": report.ruff,
            "chart": report.chart.to_dict() if report.chart else None,
            "what_to_change": what_to_change(report), "seconds": report.seconds, "applied": report.applied}


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
    errors = [f"- {which} lock: the lane did not run: {lane.error}"
              for which, lane in (("current", report.before), ("target", report.after)) if lane.error]
    failures = [f"<details><summary>{file}: {CHECK_NAMES[name]} on the target</summary>\n\n```\n{check.message}\n```\n"
                "</details>" for file, name, check in report.regressions]
    return lines + ([""] + errors if errors else []) + ([""] + failures if failures else [])


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
             f"**Verdict: {'no regressions' if report.ok else 'breaks something'}**", "",
             "## What to change", "", *([f"- {t}" for t in todo] or ["Nothing found."]), "",
             "## Packages", "", *_package_lines(report.packages), "",
             "## DAG checks (current lock → target)", "", *_dag_lines(report), "",
             "## Configuration", "", *_findings("airflow config lint (the target's Airflow)", report.config_lint),
             *_findings("ruff AIR3 (the target's ruff)", report.ruff)]
    if report.chart:
        lines += [f"## Chart {report.chart.version}", "", report.chart.note, "",
                  *_findings("values against values.schema.json", report.chart.problems)]
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
        failed = sum(c.status == "failed" for checks in lane.files.values() for c in checks.values())
        ok = sum(c.status == "ok" for checks in lane.files.values() for c in checks.values())
        if not lane.ran:
            table.add_row(which, "not run (no package moves)")
            continue
        counts = f"{ok} ok, " + (f"[red]{failed} failed[/]" if failed else "0 failed") + f" ({lane.seconds:.0f} s)"
        table.add_row(which, f"[red]{lane.error}[/]" if lane.error else counts)
    table.add_row("regressions", f"[red]{len(report.regressions)}[/]" if report.regressions else "[green]none[/]")
    lint = [f for findings in report.config_lint.values() for f in findings]
    informational = sum(not actionable(f) for f in lint)
    table.add_row("config lint", f"{len(lint) - informational} finding(s) in {len(report.config_lint)} "
                                 f"environment(s)" + (f", {informational} informational" if informational else ""))
    table.add_row("ruff AIR3", f"{len(report.ruff)} finding(s)")
    if report.chart:
        count = sum(len(v) for v in report.chart.problems.values())
        table.add_row(f"chart {report.chart.version}", f"{count} problem(s)" if report.chart.available
                      else "[red]its schema cannot be obtained here[/] (see below)")
    return table
