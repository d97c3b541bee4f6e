"""Under pytest-xdist, only a worker that runs a test needing Postgres starts one.

Each worker collects every test, but runs only the share the controller sends it; a server started
for everything collected is one server per worker, each competing for the cores.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from airstack import paths, proc

from tests.integration.pg_wrappers import scratch_folder, server_starts, wrapped_binaries

SAMPLE = Path(__file__).parent / "xdist_sample"


def test_a_worker_that_runs_no_postgres_test_starts_no_postgres(tmp_path):
    record = tmp_path / "record"
    with scratch_folder() as folder:
        bin_dir = wrapped_binaries(folder)  # counts the servers started
        result = proc.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist", "loadgroup",
             SAMPLE / "sample_needs_postgres.py", SAMPLE / "sample_needs_nothing.py"],
            env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "AIRSTACK_TEST_POSTGRES": "embedded",
                 "AIRSTACK_XDIST_SAMPLE_RECORD": str(record), "PYTHONPATH": str(paths.repo_root())},
            cwd=paths.repo_root(), check=False, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        workers = dict(line.split() for line in record.read_text().splitlines())
        assert workers.keys() == {"postgres", "nothing"}
        assert workers["postgres"] != workers["nothing"], "both tests ran on one worker: the premise does not hold"
        assert len(server_starts(folder)) == 1, server_starts(folder)
