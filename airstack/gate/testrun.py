"""The two test sessions: ``nox -s test`` (the team's gate) and ``nox -s test-platform`` (the tooling's).

``gate`` checks what the team writes and CI ships, in four lanes that run at once:

- ``dags``: pytest over ``tests/dags`` (integrity, policy and templates of every DAG file, every
  DAG run with ``dag.test()`` on Postgres, pod specs, settings parity), in one process that
  forks the DAG runs from a warm parent (airstack.dagtools.runs); its output streams;
- ``lint``: ``python -m airstack.gate.lint`` (flake8, ruff's AIR rules, yamllint, image pins, cfn-lint, checkov);
- ``settings``: ``python -m airstack.settings check`` (every environment whose key is here);
- ``charts``: ``tests/deploy/charts/`` (charts rendered with the real Helm engine, manifests validated,
  checkov over the renders: test_chart_security.py).

Each lane counts what it checked (airstack.gate.report): passed, failed, skipped, could not run, and
why. The other lanes' output is shown when they fail or could not run; a table of lanes, each with its
verdict (airstack.verdict: ok, partial, incomplete, failed), counts and reasons, ends the run, and its
last line is the gate's verdict, which sets the exit code.

``platform`` runs the tooling's own tests in one pytest: ``tests/unit``, ``tests/integration``,
``tests/docker``, ``tests/dags/checker`` and ``tests/deploy`` (but the charts), spread over
every core (pytest-xdist). With
``--changed-since REF`` it runs only when the tooling changed (``airstack/``, the locks, the
noxfile, pyproject.toml, the platform tests, the docs), and then only the affected test modules.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from airstack import paths, proc
from airstack.gate import report
from airstack.verdict import OK, PARTIAL, required

DEPLOY_TESTS = "tests/deploy"
CHART_TESTS = "tests/deploy/charts"
GATE_TESTS = ("tests/dags",)
CHECKER_TESTS = "tests/dags/checker"
PLATFORM_TESTS = ("tests/unit", "tests/integration", "tests/docker", CHECKER_TESTS, DEPLOY_TESTS)
# What the platform session tests: a change elsewhere (DAGs, settings, charts) is the gate's.
TOOLING = ("airstack/", "requirements/", "noxfile.py", "pyproject.toml", "tests/conftest.py", "tests/helpers.py",
           "docs/", "mkdocs.yml", "README.md", *(f"{t}/" for t in PLATFORM_TESTS))  # docs: tests read them
# Affected test modules from which spreading over workers pays for the workers' start-up.
PARALLEL_FROM = 8
REPORT_ENV = "AIRSTACK_GATE_REPORT"  # a file to write each lane's seconds, exit code and counts to
TALLY = ["-p", "airstack.gate.pytest_tally"]  # the pytest lanes count what they checked (--tally FILE)


@dataclass
class Lane:
    name: str
    argv: list[str]
    what: str
    report: Path | None = None  # where the lane writes what it checked (airstack.gate.report)
    pytest: bool = False
    code: int | None = None
    seconds: float = 0.0
    log: Path | None = None
    process: object = field(default=None, repr=False)


def given_paths(pytest_args: list[str]) -> list[str]:
    """The test paths among pytest's arguments (``tests/dags``, ``tests/unit/test_x.py::test_y``)."""
    root = paths.repo_root()
    return [a for a in pytest_args if not a.startswith("-") and (root / a.split("::")[0]).exists()]


# --------------------------------------------------------------------------------- gate --
def gate_lanes(args: argparse.Namespace, pytest_args: list[str], folder: Path) -> tuple[Lane, list[Lane]]:
    """The streaming DAG lane and the lanes that run beside it; each writes its report into ``folder``."""
    changed = ["--changed-since", args.changed_since] if args.changed_since else []
    named = given_paths(pytest_args)
    options = [a for a in pytest_args if a not in named]
    dag_named = [p for p in named if not p.startswith(DEPLOY_TESTS)]
    chart_named = [p for p in named if p.startswith(DEPLOY_TESTS)]
    # pytest's options (`-k etl`) go to the DAG lane, and to the charts lane where a chart test is named: a
    # lane they leave empty would be `incomplete` (exit 5).
    dag_options, chart_options = (options if dag_named or not chart_named else []), (options if chart_named else [])
    dag_paths = dag_named or [*GATE_TESTS, f"--ignore={CHECKER_TESTS}"]
    chart_paths = chart_named or [CHART_TESTS]
    pytest = [sys.executable, "-m", "pytest", "--numprocesses=0", *TALLY]
    reports = {name: folder / f"{name}.json" for name in ("dags", "lint", "settings", "charts")}
    # The charts lane's log (shown when it fails) lists failures only (-rfE): the table gives each skip reason once.
    dags = Lane("dags", [*pytest, f"--tally={reports['dags']}", "--prestart", *dag_paths, *dag_options, *changed],
                "DAG integrity, policy, templates; every DAG run on Postgres; pod specs; parity",
                reports["dags"], pytest=True)
    side = [
        Lane("lint", [sys.executable, "-m", "airstack.gate.lint", f"--report={reports['lint']}", *changed],
             "flake8, ruff AIR rules, yamllint, image pins, cfn-lint, checkov", reports["lint"]),
        Lane("settings", [sys.executable, "-m", "airstack.settings", "check", "--no-parity",
                          f"--report={reports['settings']}"],
             "every environment whose key is here: decrypted, validated (parity: the dags lane)", reports["settings"]),
        Lane("charts", [*pytest, f"--tally={reports['charts']}", f"--confcutdir={DEPLOY_TESTS}", "-q",
                        "--no-header", "-rfE", *chart_paths, *chart_options, *changed],
             "charts rendered with the Helm engine, manifests validated", reports["charts"], pytest=True),
    ]
    return dags, side


def _start(lane: Lane, folder: Path) -> threading.Thread:
    """Start the lane's process, and a thread that notes its exit code and time when it ends."""
    lane.log = folder / f"{lane.name}.log"
    started = time.perf_counter()
    lane.process = proc.start(lane.argv, log_file=lane.log, cwd=paths.repo_root(), die_with_parent=True)

    def wait() -> None:
        code = lane.process.wait()
        lane.seconds, lane.code = time.perf_counter() - started, code

    waiter = threading.Thread(target=wait, name=f"lane-{lane.name}", daemon=True)
    waiter.start()
    return waiter


def settle_lanes(lanes: list[Lane], require: set[str]) -> list[report.LaneResult]:
    """Each lane's verdict, from its exit code and its report."""
    results = []
    for lane in lanes:
        result = report.settle(lane.name, lane.code, report.read_report(lane.report), require, lane.pytest)
        result.seconds, result.what = lane.seconds, lane.what
        results.append(result)
    return results


def _report(lanes: list[Lane], results: list[report.LaneResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, width=max(100, Console().width))
    for lane, result in zip(lanes, results):
        if lane.log and result.word not in (OK, PARTIAL):
            console.rule(f"{lane.name}: {result.word} (exit {lane.code})")
            console.print(lane.log.read_text(errors="replace").rstrip(), markup=False, highlight=False)
    table = Table(title="nox -s test", title_justify="left")
    table.add_column("lane")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    table.add_column("checked: counts, what, why some did not run", overflow="fold")
    for result in results:
        table.add_row(*report.row(result))
    console.print(table)
    console.print(report.last_line(results), markup=False, highlight=False)


def run_lanes(dags: Lane, side: list[Lane], folder: Path) -> None:
    """Start the side lanes, stream the DAG lane, wait for the side lanes (stopped if this is interrupted)."""
    try:
        waiters = [_start(lane, folder) for lane in side]
        started = time.perf_counter()
        dags.code = proc.run_streaming(dags.argv, cwd=paths.repo_root())
        dags.seconds = time.perf_counter() - started
        for waiter in waiters:
            waiter.join()
    finally:
        for lane in side:
            if lane.process is not None and lane.code is None:
                proc.stop(lane.process, group=True)


def run_gate(args: argparse.Namespace, pytest_args: list[str]) -> int:
    require = required()  # an unknown name in AIRSTACK_REQUIRE is refused before anything runs
    with tempfile.TemporaryDirectory(prefix="airstack-gate-") as tmp:
        dags, side = gate_lanes(args, pytest_args, Path(tmp))
        run_lanes(dags, side, Path(tmp))
        results = settle_lanes([dags, *side], require)
        _report([dags, *side], results)
    if os.environ.get(REPORT_ENV):  # nox -s bench: where the gate's time went
        Path(os.environ[REPORT_ENV]).write_text(json.dumps(report.bench_record(results)))
    return report.gate_exit_code(results)


# ----------------------------------------------------------------------------- platform --
def tooling_changed(changed: list[str]) -> list[str]:
    """The changed paths that the platform's tests are about."""
    return [c for c in changed if c.startswith(TOOLING)]


def platform_plan(ref: str | None) -> list[str] | None:
    """The pytest arguments of the platform run; None: nothing to run."""
    parallel = ["--numprocesses=auto", "--dist=loadgroup"]
    everything = [*parallel, *PLATFORM_TESTS, f"--ignore={CHART_TESTS}"]
    if not ref:
        return everything
    from airstack.gate.affected import for_ref

    root = paths.repo_root()
    changed, affected = for_ref(root, ref)
    if not tooling_changed(changed):
        return None
    if affected.everything:
        return everything
    files = sorted(t for t in affected.test_files if (root / t).is_file() and not t.startswith(f"{CHART_TESTS}/")
                   and t.startswith(tuple(f"{p}/" for p in PLATFORM_TESTS)))
    if not files:
        return None
    return [*parallel, *files] if len(files) >= PARALLEL_FROM else ["--numprocesses=0", *files]


def _xdist(options: list[str] | None) -> list[str]:
    return [o for o in options or ["--numprocesses=0"] if o.startswith("--numprocesses") or o.startswith("--dist")]


def run_platform(args: argparse.Namespace, pytest_args: list[str]) -> int:
    options = platform_plan(args.changed_since)
    if args.changed_since:
        pytest_args = [*pytest_args, "--changed-since", args.changed_since]
    named = given_paths(pytest_args)
    if named:  # `nox -s test-platform -- tests/unit/x.py ...`: those paths only
        pytest_args = [a for a in pytest_args if a not in named]
        options = [*_xdist(options), *named]
    if options is None:
        print(f"--changed-since {args.changed_since}: the tooling did not change (nothing under "
              f"{', '.join(TOOLING[:4])}...): the platform tests have nothing to run")
        return 0
    return proc.run_streaming([sys.executable, "-m", "pytest", *options, *pytest_args])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s test|test-platform --", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=("gate", "platform"))
    parser.add_argument("--changed-since", metavar="REF", help="only what the changes since git REF affect")
    args, pytest_args = parser.parse_known_args(argv)
    return run_gate(args, pytest_args) if args.suite == "gate" else run_platform(args, pytest_args)


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
