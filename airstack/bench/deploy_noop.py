"""``deploy-noop``: with nothing changed, ``deploy-plan`` of an environment deployed to the local AWS
endpoint (a moto server on 127.0.0.1) plus its charts reports "no changes"; how long it takes.

:func:`run` (in the Airflow environment, like every benchmark) starts :func:`main` in the deploy
toolchain's environment (``python -m airstack.bench.deploy_noop``), whose python ``nox -s bench`` passes.
What stands in for what (:mod:`airstack.standins`): moto for AWS (stacks ``registries`` and ``logs``, the
two moto runs in full), the recording helm stand-in for ``helm`` and the cluster (it renders our platform
chart with the real Helm 4 engine), docker-offline's registry for ECR.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import yaml

from airstack import paths, proc
from airstack.bench.common import write_result


def run(args: argparse.Namespace) -> None:
    """In a process of its own (it starts the moto server and the helm stand-in)."""
    proc.run_streaming([sys.executable, "-m", "airstack.bench.deploy_noop"])


def _scratch(tmp: Path) -> Path:
    """A scratch repository whose integration deploys two stacks under a fresh prefix (pandas-basic left out:
    conda channels are unreachable here)."""
    import shutil

    from airstack.deploy.replay import scratch_environment

    root, _ = scratch_environment(tmp / "repo", registry="127.0.0.1:5000/airstack-bench")
    shutil.rmtree(root / "images" / "pandas-basic")
    path = root / "settings" / "integration" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    data["cloudformation"]["stacks"] = ["registries", "logs"]
    data["cloudformation"]["stack_prefix"] = f"bench-{secrets.token_hex(3)}"
    path.write_text(yaml.safe_dump(data))
    return root


def _plan_timings(root: Path, env: dict[str, str]) -> tuple[list[float], str]:
    """Deploy once for real, then time three ``plan``s; the timings and the last plan's output."""
    command = [sys.executable, "-m", "airstack.deploy"]
    proc.run([*command, "deploy", "integration", "--yes"], env=env, cwd=root, timeout=1800)
    timings, out = [], ""
    for _ in range(3):
        started = time.perf_counter()
        out = proc.run([*command, "plan", "integration"], env=env, cwd=root, timeout=600).stdout
        timings.append(time.perf_counter() - started)
    return timings, out


def main() -> int:
    import shutil

    from airstack.standins import aws_and_helm

    repo = paths.repo_root()
    tmp = Path(tempfile.mkdtemp(prefix="airstack-bench-deploy-"))
    try:
        root = _scratch(tmp)
        with aws_and_helm(tmp) as standin_env:
            timings, out = _plan_timings(root, {**standin_env, "AIRSTACK_ROOT": str(root)})
        if out.count("no changes") != 4:  # two stacks, two releases
            raise SystemExit(f"deploy-noop: expected 'no changes' for 2 stacks and 2 releases, got:\n{out}")
        best = min(timings)
        os.chdir(repo)
        write_result("deploy-noop", best, "s",
                     f"deploy-plan with nothing changed: {best:.2f} s best of 3 (goal <= 5 s; 2 stacks on moto, "
                     "2 Helm releases via the stand-in, images checked in the registry)",
                     runs=[round(t, 3) for t in timings], goal_seconds=5)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
