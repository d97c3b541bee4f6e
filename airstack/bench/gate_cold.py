"""``test-cold``: a clean clone to a green ``nox -s test``, installs included."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from airstack import paths, proc
from airstack.bench.common import write_result
from airstack.bench.gate import gate_run


def run(args: argparse.Namespace) -> None:
    """A clean clone to a green `nox -s test`, installs included (uv's download cache is this machine's)."""
    nox = proc.which("nox", "pip install 'nox[uv]'")
    with tempfile.TemporaryDirectory(prefix="airstack-bench-cold-") as tmp:
        root = Path(tmp) / "repo"
        started = time.perf_counter()
        proc.run(["git", "clone", "--quiet", str(paths.repo_root()), str(root)])
        cloned = time.perf_counter() - started
        run = gate_run(root, nox)
    total = cloned + run["seconds"]
    dags = run["lanes"].get("dags", {}).get("seconds", 0.0)
    goal = 180.0
    write_result("test-cold", total, "s",
                 f"git clone + nox -s test took {total:.1f} s (goal <= {goal:g} s), exit {run['exit_code']}",
                 goal=goal, exit_code=run["exit_code"], command="git clone && nox -s test",
                 note="uv's cache on this machine is warm (packages are not downloaded again); Docker images are "
                      "local; ../shared/ci/fresh-machine measures a machine with nothing (see .ci/run's log)",
                 breakdown={"git clone": round(cloned, 1),
                            "environments installed (uv) and nox start": round(run["seconds"] - dags, 1),
                            "lanes (run at once)": run["lanes"], "dags lane phases": run["dags_lane_phases"]})
    if run["exit_code"] != 0:
        raise SystemExit(run["exit_code"])
