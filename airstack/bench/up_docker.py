"""``up-docker``: warm and cold ``up`` with the docker runtime, ``down`` and ``restart``, phase by phase."""

from __future__ import annotations

import argparse

from airstack.bench.common import write_result
from airstack.bench.local_env import local_env_runs


def run(args: argparse.Namespace) -> None:
    runs = local_env_runs("docker", ("dags", "plugins", "settings", "images", "requirements"))
    ours = min(r["seconds"] for r in runs["warm"])
    write_result("up-docker", ours, "s", f"warm `up` (docker runtime) until every DAG file is parsed: "
                 f"{ours:.1f} s (best of 2; goal <= 20 s)", **runs, goal="<= 20 s")
