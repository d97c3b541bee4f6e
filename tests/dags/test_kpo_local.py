"""The KubernetesPodOperator example runs end to end with its pods as local Docker containers.

Real parts: the etl-basic image built from images/etl-basic, a real Docker daemon, dag.test()
on Postgres, the project's ConfigMap/Secret values from settings/local (sops).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from airstack import paths
from airstack.dagcheck.parse import parse_file
from airstack.docker_client import get_client

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
LABEL = "airstack.test=kpo-local"


def _run(dag_id: str):
    dag = next(d for d in parse_file(paths.dags_folder() / "k8s_project_example.py", paths.dags_folder())
               if d.dag_id == dag_id)
    run = dag.test()
    return run.state, {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_kpo_example_runs_as_local_containers(local_pods_env):
    state, tasks = _run("k8s_project_example")
    assert (state, tasks) == ("success", {"extract_orders": "success", "summarise_orders": "success"})

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
    state, tasks = _run("k8s_project_example")
    assert state == "failed" and tasks["extract_orders"] == "failed"
