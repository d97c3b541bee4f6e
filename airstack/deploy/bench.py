"""``deploy-noop``: with nothing changed, ``deploy-plan`` of an environment deployed to the local AWS
endpoint (a moto server on 127.0.0.1) plus its charts reports "no changes"; how long it takes.

Runs in a process of its own (``nox -s bench -- deploy-noop`` starts it).
What stands in for what: moto for AWS (stacks ``registries`` and ``logs``, the two moto runs in
full), ``tests/deploy/helm_standin.py`` for ``helm`` and the cluster (it renders our platform
chart with the real Helm 4 engine), docker-offline's registry for ECR.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import yaml

from airstack import paths, proc
from airstack.deploy.standins import aws_and_helm, scratch_environment


def main() -> int:
    import shutil

    from airstack.bench import write_result

    repo = paths.repo_root()
    tmp = Path(tempfile.mkdtemp(prefix="airstack-bench-deploy-"))
    try:
        root, _ = scratch_environment(tmp / "repo", registry="127.0.0.1:5000/airstack-bench")
        shutil.rmtree(root / "images" / "pandas-basic")  # conda channels are unreachable here
        path = root / "settings" / "integration" / "deploy.yaml"
        data = yaml.safe_load(path.read_text())
        data["cloudformation"]["stacks"] = ["registries", "logs"]
        data["cloudformation"]["stack_prefix"] = f"bench-{secrets.token_hex(3)}"
        path.write_text(yaml.safe_dump(data))
        with aws_and_helm(tmp) as standin_env:
            env = {**standin_env, "AIRSTACK_ROOT": str(root)}
            command = [sys.executable, "-m", "airstack.deploy"]
            proc.run([*command, "deploy", "integration", "--yes"], env=env, cwd=root, timeout=1800)
            timings, out = [], ""
            for _ in range(3):
                started = time.perf_counter()
                out = proc.run([*command, "plan", "integration"], env=env, cwd=root, timeout=600).stdout
                timings.append(time.perf_counter() - started)
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
