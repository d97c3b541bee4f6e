"""The KubernetesPodOperator example runs end to end with its pods as local Docker containers.

Real parts: the etl-basic image built from images/etl-basic, a real Docker daemon, dag.test()
on Postgres, the project's ConfigMap/Secret values from settings/local (sops).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from airstack.docker_client import get_client
from tests.dags.conftest import run_here

# What runs this module beyond its imports (read by airstack.gate.affected): an affected DAG that uses kpo.
AFFECTED_BY_DAGS = "kpo"

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
LABEL = "airstack.test=kpo-local"


def _run():
    return run_here("k8s_project_example.py", "k8s_project_example", logs="kpo-local")


def test_kpo_example_runs_as_local_containers(local_pods_env):
    outcome = _run()
    assert outcome.ok, outcome.explain()
    assert outcome.tasks == {"extract_orders": "success", "summarise_orders": "success"}

    # The pods wrote into the project's sub-path of the data claim, as on Kubernetes.
    summaries = list((local_pods_env["data"] / "example1" / "summaries").glob("*.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    project = local_pods_env["project"]
    # ConfigMap values (currency, MIN_ORDER_AMOUNT=10 drops initech's 5.25 and acme's 4.00) ...
    assert summary["currency"] == project.config["REPORT_CURRENCY"] == "EUR"
    assert summary["totals"] == {"acme": "177.50", "globex": "349.99"}
    # ... and the Secret's value, reached the container (compared by fingerprint).
    assert summary["api_token_sha256"] == hashlib.sha256(project.secret["API_TOKEN"].encode()).hexdigest()
    # delete_succeeded_pod: nothing left behind.
    assert get_client().containers.list(all=True, filters={"label": LABEL}) == []


def test_no_daemon_fails_the_task_with_the_reason(local_pods_env, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    outcome = _run()
    assert outcome.state == "failed" and outcome.tasks["extract_orders"] == "failed"
    # The failure explains itself: the task's exception is the reason, in the message's first line.
    first = outcome.explain().splitlines()[0]
    assert first.startswith("k8s_project_example (dags/k8s_project_example.py): task 'extract_orders' failed: "), first
    assert "no Docker daemon answers at unix:///nonexistent/docker.sock" in first, first
