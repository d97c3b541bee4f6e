"""``affected``: in a scratch clone, one DAG file changed: the gate with ``--changed-since`` against the full
gate, in the same run."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from airstack import paths, proc
from airstack.bench.common import write_result


def _test_runs(root: Path, extra: list[str]) -> float:
    """What `nox -s test` runs (airstack.gate.testrun's gate: its lanes), timed."""
    started = time.perf_counter()
    proc.run([sys.executable, "-m", "airstack.gate.testrun", "gate", "-q", "-p",
              "no:cacheprovider", *extra], cwd=root, env={"AIRSTACK_ROOT": str(root)}, timeout=3600)
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> None:
    """A scratch clone of this repository (its last commit); one DAG file changed there, uncommitted."""
    repo = paths.repo_root()
    with tempfile.TemporaryDirectory(prefix="airstack-bench-affected-") as tmp:
        root = Path(tmp) / "repo"
        proc.run(["git", "clone", "--quiet", str(repo), str(root)])
        full = _test_runs(root, [])
        dag = root / "dags" / "example_bash_operator.py"
        dag.write_text(dag.read_text() + "\n# a one-line change\n")
        affected = _test_runs(root, ["--changed-since", "HEAD"])
    ratio = affected / full
    write_result("affected", ratio * 100, "%",
                 f"one DAG file changed: --changed-since {affected:.1f} s vs full {full:.1f} s = {ratio:.0%} "
                 "(goal <= 25 %)", full_seconds=round(full, 1), affected_seconds=round(affected, 1), goal_percent=25,
                 note="the full run is the gate (nox -s test's lanes); a one-DAG run still pays the fixed part "
                      "(Postgres, the migration, the Execution API warm-up: see test-suite's breakdown), so the "
                      "share is high while both times are low")
