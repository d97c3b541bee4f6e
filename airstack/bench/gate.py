"""``test-suite``: the gate, warm: ``nox -s test -R`` three times (the median counts), with where the time went."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from airstack import paths, proc
from airstack.bench.common import write_result


def gate_run(root: Path, nox: str, extra: tuple[str, ...] = ()) -> dict:
    """One `nox -s test` in ``root``, timed, with the gate's lanes and the DAG lane's phases."""
    with tempfile.TemporaryDirectory(prefix="airstack-bench-gate-") as tmp:
        lanes, phases = Path(tmp) / "lanes.json", Path(tmp) / "phases.json"
        started = time.perf_counter()
        code = proc.run_streaming([nox, "-s", "test", *extra], cwd=root,
                                  env={"AIRSTACK_GATE_REPORT": str(lanes), "AIRSTACK_TEST_PHASES": str(phases)})
        seconds = time.perf_counter() - started
        return {"seconds": round(seconds, 1), "exit_code": code,
                "lanes": json.loads(lanes.read_text()) if lanes.is_file() else {},
                "dags_lane_phases": json.loads(phases.read_text()) if phases.is_file() else {}}


def run(args: argparse.Namespace) -> None:
    """The gate, warm: `nox -s test -R` three times (the median counts), with where the time went."""
    root = paths.repo_root()
    nox = proc.which("nox", "pip install 'nox[uv]'")
    if not (root / ".nox" / "_airflow" / ".installed").is_file():
        proc.run_streaming([nox, "-s", "test"], cwd=root)  # warm-up: create the environments once
    runs = [gate_run(root, nox, ("-R",)) for _ in range(3)]
    median = sorted(runs, key=lambda r: r["seconds"])[1]
    goal = 30.0
    dags = median["lanes"].get("dags", {}).get("seconds", 0.0)
    write_result("test-suite", median["seconds"], "s",
                 f"nox -s test -R took {median['seconds']:.1f} s (median of 3: "
                 f"{', '.join(str(r['seconds']) for r in runs)}; goal <= {goal:g} s), exit {median['exit_code']}",
                 goal=goal, exit_code=median["exit_code"], command="nox -s test -R", runs=[r["seconds"] for r in runs],
                 breakdown={"nox start and the environment check": round(median["seconds"] - dags, 1),
                            "lanes (run at once)": median["lanes"], "dags lane phases": median["dags_lane_phases"]})
    if median["exit_code"] != 0:
        raise SystemExit(median["exit_code"])
