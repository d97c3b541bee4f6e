"""The native runtime runs KubernetesPodOperator tasks as local containers, through the local settings'
cluster policy (airstack/localenv/pod_policy.py) that it puts on its services' PYTHONPATH.

The docker runtime's counterpart is in test_local_docker.py (the same DAG, run in its scheduler container).
"""

from __future__ import annotations

import json
import sys

import pytest

from airstack import proc
from tests.e2e.test_local_native import ROOT, cli, scratch_env

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root, environ, doc = scratch_env(tmp_path_factory.mktemp("local-native-pods"),
                                     ("dags", "plugins", "settings", "images", "requirements"))
    yield {"root": root, "environ": environ, "project": doc["projects"]["example1"]}
    cli(environ, "clean", "--yes", check=False)


def test_native_runs_the_kpo_example_as_local_containers(env):
    environ, root = env["environ"], env["root"]
    built = proc.run([sys.executable, "-m", "airstack.images", "build", "etl-basic"], env=environ, cwd=ROOT,
                     check=False, timeout=1800)
    assert built.returncode == 0, built.stdout + built.stderr
    up = cli(environ, "up", "--runtime", "native", check=False, timeout=900)
    assert up.returncode == 0 and "runtime: native" in up.stdout, up.stdout + up.stderr
    run = cli(environ, "run", "k8s_project_example", check=False, timeout=900)
    assert run.returncode == 0 and ": success" in run.stdout, run.stdout + run.stderr
    (summary,) = (root / ".airstack" / "local" / "data" / "example1" / "summaries").glob("*.json")
    assert json.loads(summary.read_text())["currency"] == env["project"]["config"]["REPORT_CURRENCY"]
    logs = "".join(p.read_text(errors="replace") for p in (root / ".airstack").rglob("*.log"))
    assert "locally as a Docker container of" in logs  # the policy's runner, not a cluster client
