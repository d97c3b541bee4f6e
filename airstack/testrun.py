"""The two test sessions: ``nox -s test`` (the team's gate) and ``nox -s test-platform`` (the tooling's).

``gate`` checks what the team writes and CI ships, in four lanes that run at once:

- ``dags``: pytest over ``tests/dags`` (integrity, policy and templates of every DAG file, every
  DAG run with ``dag.test()`` on Postgres, pod specs, settings parity), in one process that
  forks the DAG runs from a warm parent (airstack.dagruns); its output streams;
- ``lint``: ``python -m airstack.lint`` (flake8, ruff's AIR rules, yamllint, image pins, cfn-lint);
- ``settings``: ``python -m airstack.settings check`` (every environment whose key is here);
- ``charts``: ``tests/deploy/test_charts.py`` (charts rendered with the real Helm engine,
  manifests validated).

The other lanes' output is shown when they fail; a table of lanes ends the run.

``platform`` runs the tooling's own tests in one pytest: ``tests/unit``, ``tests/integration``,
``tests/docker``, ``tests/dags/checker`` and ``tests/deploy`` (but the charts), spread over
every core (pytest-xdist). With
``--changed-since REF`` it runs only when the tooling changed (``airstack/``, the locks, the
noxfile, pyproject.toml, the platform tests), and then only the affected test modules.
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

DEPLOY_TESTS = "tests/deploy"
CHART_TESTS = "tests/deploy/test_charts.py"
GATE_TESTS = ("tests/dags",)
CHECKER_TESTS = "tests/dags/checker"
PLATFORM_TESTS = ("tests/unit", "tests/integration", "tests/docker", CHECKER_TESTS, DEPLOY_TESTS)
# What the platform session tests: a change elsewhere (DAGs, settings, charts) is the gate's.
TOOLING = ("airstack/", "requirements/", "noxfile.py", "pyproject.toml", "tests/conftest.py", "tests/helpers.py",
           *(f"{t}/" for t in PLATFORM_TESTS))
# Affected test modules from which spreading over workers pays for the workers' start-up.
PARALLEL_FROM = 8
REPORT_ENV = "AIRSTACK_GATE_REPORT"  # a file to write each lane's seconds and exit code to
NO_TESTS_COLLECTED = 5  # pytest's exit code when a selection leaves nothing: not a failure here


@dataclass
class Lane:
    name: str
    argv: list[str]
    what: str
    code: int | None = None
    seconds: float = 0.0
    log: Path | None = None
    process: object = field(default=None, repr=False)


def given_paths(pytest_args: list[str]) -> list[str]:
    """The test paths among pytest's arguments (``tests/dags``, ``tests/unit/test_x.py::test_y``)."""
    root = paths.repo_root()
    return [a for a in pytest_args if not a.startswith("-") and (root / a.split("::")[0]).exists()]


# --------------------------------------------------------------------------------- gate --
def gate_lanes(args: argparse.Namespace, pytest_args: list[str]) -> tuple[Lane, list[Lane]]:
    """The streaming DAG lane and the lanes that run beside it."""
    changed = ["--changed-since", args.changed_since] if args.changed_since else []
    named = given_paths(pytest_args)
    options = [a for a in pytest_args if a not in named]
    dag_paths = [p for p in named if not p.startswith(DEPLOY_TESTS)] or [*GATE_TESTS, f"--ignore={CHECKER_TESTS}"]
    chart_paths = [p for p in named if p.startswith(DEPLOY_TESTS)] or [CHART_TESTS]
    pytest = [sys.executable, "-m", "pytest", "--numprocesses=0", "--prestart"]
    dags = Lane("dags", [*pytest, *dag_paths, *options, *changed],
                "DAG integrity, policy, templates; every DAG run on Postgres; pod specs; parity")
    side = [
        Lane("lint", [sys.executable, "-m", "airstack.lint", *changed],
             "flake8, ruff AIR rules, yamllint, image pins, cfn-lint"),
        Lane("settings", [sys.executable, "-m", "airstack.settings", "check", "--no-parity"],
             "every environment whose key is here: decrypted, validated (parity: the dags lane)"),
        Lane("charts", [sys.executable, "-m", "pytest", f"--confcutdir={DEPLOY_TESTS}", "--numprocesses=0",
                        "-q", "--no-header", *chart_paths, *options, *changed],
             "charts rendered with the Helm engine, manifests validated"),
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


def _report(lanes: list[Lane]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, width=max(100, Console().width))
    for lane in lanes:
        if lane.log and lane.code not in (0, NO_TESTS_COLLECTED):
            console.rule(f"{lane.name}: failed (exit {lane.code})")
            console.print(lane.log.read_text(errors="replace").rstrip(), markup=False, highlight=False)
    table = Table(title="nox -s test", title_justify="left")
    for column in ("lane", "result", "seconds", "what it checks"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for lane in lanes:
        ok = lane.code in (0, NO_TESTS_COLLECTED)
        table.add_row(lane.name, "[green]ok[/]" if ok else f"[red]failed (exit {lane.code})[/]",
                      f"{lane.seconds:.1f}", lane.what)
    console.print(table)


def run_gate(args: argparse.Namespace, pytest_args: list[str]) -> int:
    dags, side = gate_lanes(args, pytest_args)
    with tempfile.TemporaryDirectory(prefix="airstack-gate-") as tmp:
        try:
            waiters = [_start(lane, Path(tmp)) for lane in side]
            started = time.perf_counter()
            dags.code = proc.run_streaming(dags.argv, cwd=paths.repo_root())
            dags.seconds = time.perf_counter() - started
            for waiter in waiters:
                waiter.join()
        finally:
            for lane in side:
                if lane.process is not None and lane.code is None:
                    proc.stop(lane.process, group=True)
        _report([dags, *side])
    if os.environ.get(REPORT_ENV):  # nox -s bench: where the gate's time went
        Path(os.environ[REPORT_ENV]).write_text(json.dumps(
            {lane.name: {"seconds": round(lane.seconds, 2), "exit_code": lane.code} for lane in (dags, *side)}))
    return 0 if all(lane.code in (0, NO_TESTS_COLLECTED) for lane in (dags, *side)) else 1


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
    from airstack.affected import for_ref

    root = paths.repo_root()
    changed, affected = for_ref(root, ref)
    if not tooling_changed(changed):
        return None
    if affected.everything:
        return everything
    files = sorted(t for t in affected.test_files if (root / t).is_file() and t != CHART_TESTS
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
