"""``python -m airstack.upgrade TARGET``: rehearse an upgrade in a scratch folder and report it.

1. compile the candidate runtime and dev locks from requirements/runtime.in with the new pins
   (``nox -s lock``'s own command, overrides kept), and diff the packages;
2. install the candidate into a throwaway venv (uv), then run the gate's DAG checks (integrity,
   policy, templates, every DAG run with ``dag.test()`` on Postgres) with the current lock and with
   the candidate, per DAG file;
3. ``airflow config lint`` (the candidate's Airflow) on the configuration each environment deploys,
   and ruff's AIR3 rules (the candidate's ruff);
4. with ``--chart VERSION``: the chart values against that release's values.schema.json;
   with ``--db-rows N``: a metadata database seeded with N task instances at the current version, moved
   to the target's schema and back, each move timed and sized (airstack.upgrade.dbmigrate);
5. the report: Markdown and JSON under ``.airstack/upgrade/``, a table here, and airstack.verdict's word:
   ``ok``; ``failed`` (exit 1: a regression, an actionable finding, a chart problem); ``incomplete`` (exit
   1: a check could not run, such as a DAG check whose Postgres could not start, or one the DAG-run
   harness could not run; it is never counted as "no change").

Nothing in the repository changes, but with ``--apply`` and the verdict ``ok``: then the new
runtime.in and the recompiled runtime and dev locks are written, and nothing else. Otherwise
``--apply`` says why in one line, and exits 1.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from airstack import paths
from airstack.verdict import exit_code
from airstack.upgrade import args as upgrade_args
from airstack.errors import ConfigError
from airstack.upgrade import chart, dbmigrate, dbrows, deployed, locks, report, steps
from airstack.upgrade.dagresults import LaneResult

REPORT_DIR = Path(".airstack") / "upgrade"


class Progress:
    """Each long step under a rich spinner on stderr, then one line with its time (kept in ``seconds``)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, key: str, what: str):
        started = time.perf_counter()
        with self.console.status(f"{what}…"):
            yield
        self.seconds[key] = round(time.perf_counter() - started, 1)
        self.console.print(f"[green]✓[/] {what} ({self.seconds[key]:.0f} s)", highlight=False)


def _lanes(root: Path, scratch: Path, candidate: str, progress: Progress) -> tuple[LaneResult, LaneResult]:
    lanes = []
    for key, python, what in (("dags-current", steps.current_python(), "DAG checks and runs on the current lock"),
                              ("dags-target", candidate, "DAG checks and runs on the target")):
        with progress.step(key, what):
            lane = steps.dag_lane(python, root, scratch / f"{key}.xml")
        lane.seconds = progress.seconds[key]
        lanes.append(lane)
    return lanes[0], lanes[1]


def _chart_check(root: Path, version: str) -> report.ChartCheck:
    schema, note = chart.find_schema(root, version)
    if schema is None:
        return report.ChartCheck(version, False, note)
    found = {env: chart.problems(schema, deployed.chart_values(root, env)) for env in deployed.helm_environments(root)}
    return report.ChartCheck(version, True, note, found)


def rehearse(request: upgrade_args.Request, root: Path, uv: list[str], progress: Progress) -> report.Report:
    current = locks.pins((root / "requirements" / "runtime.txt").read_text())
    moves = [(package, current.get(package, "-"), version) for package, version in request.pins]
    if request.db_rows:
        _check_db_moves(current, request)
    result = report.Report(request.title, moves, locks.PackageDiff(), LaneResult(ran=False), LaneResult(ran=False))
    with tempfile.TemporaryDirectory(prefix="airstack-upgrade-") as tmp:
        scratch, candidate = Path(tmp), steps.current_python()
        if request.pins:
            with progress.step("resolve", "resolving the target from requirements/runtime.in"):
                steps.compile_candidate(root, scratch, request.pins, uv, request.title)
            result.packages = locks.diff(current, locks.pins((scratch / "requirements" / "runtime.txt").read_text()))
            with progress.step("install", "installing the target into a throwaway venv"):
                candidate = steps.install(scratch, uv)
            result.before, result.after = _lanes(root, scratch, candidate, progress)
        if request.db_rows:
            result.database = _db_rows(request, current, candidate, scratch, progress)
        with progress.step("config", "airflow config lint per environment, ruff AIR3"):
            result.config_lint = {env: steps.config_lint(candidate, root, env, scratch)
                                  for env in deployed.helm_environments(root)}
            result.ruff = steps.ruff(candidate, root)
        if request.chart:
            result.chart = _chart_check(root, request.chart)
        if request.apply and result.ok:
            result.applied = steps.apply(root, scratch)
    result.seconds = progress.seconds
    return result


def _check_db_moves(current: dict[str, str], request: upgrade_args.Request) -> None:
    try:
        dbrows.moves(current.get(locks.AIRFLOW, ""), request.pins[0][1])
    except ValueError as exc:
        raise ConfigError(f"--db-rows: {exc}") from None


def _db_rows(request: upgrade_args.Request, current: dict[str, str], candidate: str, scratch: Path,
             progress: Progress) -> dbrows.DbRehearsal:
    versions = current[locks.AIRFLOW], request.pins[0][1]
    with progress.step("db-rows", f"the metadata database with {request.db_rows:,} task instances, "
                                  f"{versions[0]} -> {versions[1]} and back"):
        return dbmigrate.rehearse(request.db_rows, {"current": steps.current_python(), "target": candidate},
                                  *versions, scratch)


def report_paths(root: Path, title: str) -> tuple[Path, Path]:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", title.replace("==", "-").replace(", ", "+")).strip("_")
    folder = root / REPORT_DIR
    return folder / f"{slug}.md", folder / f"{slug}.json"


def write(root: Path, result: report.Report) -> tuple[Path, Path]:
    markdown, data = report_paths(root, result.title)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(report.to_markdown(result))
    data.write_text(json.dumps(report.to_dict(result), indent=2) + "\n")
    return markdown, data


def _show(result: report.Report, written: tuple[Path, Path], root: Path, progress: Progress, request) -> None:
    console = progress.console
    console.print(report.summary_table(result))
    todo, not_run = report.what_to_change(result), report.could_not_run(result)
    console.print("[bold]What to change[/]" if todo else "[green]Nothing to change.[/]")
    for line in todo:
        console.print(f"- {line}", markup=False, highlight=False)
    if not_run:
        console.print("[bold red]Could not run[/] (neither passed nor failed)")
    for line in not_run:
        console.print(f"- {line}", markup=False, highlight=False)
    if request.apply:
        console.print(f"applied: {', '.join(result.applied) or 'nothing'}" if result.ok else report.refusal(result),
                      markup=False, highlight=False)
    console.print(f"report: {written[0].relative_to(root)} and {written[1].name}", highlight=False)


def main(argv: list[str]) -> int:
    uv, argv = _split_uv(argv)
    request = upgrade_args.parse(argv)
    root = paths.repo_root()
    progress = Progress()
    result = rehearse(request, root, steps.uv_argv(uv), progress)
    written = write(root, result)
    _show(result, written, root, progress, request)
    if request.json:
        sys.stdout.write(json.dumps(report.to_dict(result), indent=2) + "\n")
    if request.apply and not result.ok:
        return 1
    return exit_code(result.verdict)


def _split_uv(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--uv PATH`` (the noxfile passes its uv) taken out of the user's arguments."""
    if "--uv" in argv:
        i = argv.index("--uv")
        if i + 1 < len(argv):
            return argv[i + 1], argv[:i] + argv[i + 2:]
    return None, argv
