"""``up-native``: warm and cold ``up`` (native runtime) until every DAG file is parsed, phase by phase, ``down``
and ``restart``, with the system's PostgreSQL binaries and with the pgserver wheel's; against ``airflow
standalone`` on the same machine and lock, in the same run; the PSS."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from airstack import paths, proc
from airstack.bench.common import write_result
from airstack.bench.local_env import local_env_runs, wait_healthy


def _standalone_seconds(tmp: Path, port: int) -> float:
    """`airflow standalone` (its own defaults: SQLite, its own users) to a healthy health endpoint, warm."""
    from airstack.airflow_env import base_env

    home = tmp / "standalone-home"
    env = base_env(home, tmp / "repo" / "dags", tmp / "repo" / "plugins") | {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        # standalone starts its components as `airflow ...` from PATH
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    airflow = str(Path(sys.executable).parent / "airflow")
    seconds = []
    for _ in range(3):  # the first run initialises its database and users; the best of the next two counts
        started = time.perf_counter()
        process = proc.start([airflow, "standalone"], log_file=tmp / "standalone.log", env=env, cwd=tmp,
                             die_with_parent=True)
        try:
            wait_healthy(f"http://127.0.0.1:{port}")
            seconds.append(time.perf_counter() - started)
        finally:
            proc.stop(process, timeout=30, group=True)
    return min(seconds[1:])


def run(args: argparse.Namespace) -> None:
    """Both Postgres sources of the embedded default (the system's binaries, the pgserver wheel's), and
    `airflow standalone`, in the same run."""
    from airstack.postgres import pgserver_bin_dir
    from airstack.postgres.embedded import free_port

    folders = ("dags", "plugins", "settings")
    system = local_env_runs("native", folders)
    wheel = local_env_runs("native", folders, {"AIRSTACK_POSTGRES_BIN": "pgserver"}) if pgserver_bin_dir() else {}
    with tempfile.TemporaryDirectory(prefix="airstack-bench-standalone-") as tmp_name:
        tmp = Path(tmp_name)
        paths.scratch_copy(tmp / "repo", ("dags", "plugins"))
        standalone = _standalone_seconds(tmp, free_port())
    best = min(system["warm"], key=lambda r: r["seconds"])
    ours, ratio = best["seconds"], best["seconds"] / standalone
    wheel_best = min((r["seconds"] for r in wheel.get("warm", [])), default=None)
    write_result(
        "up-native", ours, "s",
        f"warm `up` (native) until every DAG file is parsed: {ours:.1f} s (best of 2); `airflow standalone` "
        f"until healthy, same run: {standalone:.1f} s, ratio {ratio:.2f}; cold `up` {system['cold_seconds']:.1f} s; "
        f"down {min(system['down_seconds']):.1f} s; restart {system['restart_seconds']:.1f} s; PSS "
        f"{system.get('pss_mib', 0):.0f} MiB"
        + (f"; with the pgserver wheel's Postgres: warm {wheel_best:.1f} s, cold {wheel['cold_seconds']:.1f} s, "
           f"down {min(wheel['down_seconds']):.1f} s" if wheel else "; pgserver wheel not installed")
        + " (goals: warm <= 10 s and <= 0.5x standalone, cold <= 20 s, down <= 3 s, PSS <= 1024 MiB)",
        standalone_seconds=round(standalone, 3), ratio_to_standalone=round(ratio, 3), best_warm_phases=best["phases"],
        system_binaries=system, pgserver_wheel=wheel,
        phases_note="seconds since `up` began: settings_loaded (settings/local decrypted), postgres_ready, "
                    "settings_checked (migration stamp, settings digest and row fingerprint compared), "
                    "services_forked (the last fork done: the api-server's, once its launcher has built the "
                    "app; launcher_import: each launcher's seconds to ready), healthy (every "
                    "component heartbeats, the API answers), dags_parsed (every DAG file parsed since the "
                    "processor started)",
        goal="warm <= 10 s and <= 0.5x standalone; cold <= 20 s; down <= 3 s; PSS <= 1 GiB",
    )
