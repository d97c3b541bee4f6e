"""Every Airflow pod waits for the schema first: the official chart 1.19.0 rendered by the real Helm engine
(tests/deploy/official_chart.py) with the environments' files and the deploy's payload.

What the wait runs is run against a real Postgres in tests/integration/test_schema_wait_command.py.
"""

from __future__ import annotations

import pytest

from airstack.deploy import chart_values, target
from airstack.deploy import schema_wait
from airstack.settings import deploy_file
from airstack.deploy.chart_values import merge_values
from tests.deploy.charts.render import (ENVIRONMENTS, EXECUTORS, by_kind, load_all, official_chart_release,
                                        official_values, platform_chart, platform_values, pod_template, random_payload)
from tests.deploy.charts.render import render as render_platform

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/",)

__all__ = ["official_chart_release", "platform_chart"]  # fixtures used here

RUNTIME = "registry.example/airflow:0123abcd@sha256:" + "ab" * 32
SCRIPT = "print('sync')"


def rendered(chart, env: str, executor: str, release: str = "airflow") -> list[dict]:
    tgt = target.Target(release, f"{release}-platform", release)
    payload = chart_values.airflow_values(tgt, RUNTIME, {}, "digest", deploy_file.AirflowOptions(executor=executor),
                                          users_script=SCRIPT)
    out = chart.render(values=merge_values(official_values(env), payload), name=release, namespace=release,
                       is_install=True)
    return [d for path, text in sorted(out.items()) if not path.endswith("NOTES.txt") for d in load_all(text)]


def airflow_pods(objects: list[dict], executor: str) -> dict[str, dict]:
    """Pod specs of every Airflow component the chart renders (Deployments, StatefulSets, the task pod)."""
    pods = {f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"] for o in objects
            if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["labels"].get("component") != "statsd"}
    if executor == "KubernetesExecutor":
        pods["pod_template_file.yaml"] = pod_template(objects)["spec"]
    return pods


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_airflow_pod_waits_for_the_schema_first(official_chart_release, env, executor):
    objects = rendered(official_chart_release, env, executor)
    pods = airflow_pods(objects, executor)
    expected = {"Deployment/airflow-scheduler", "Deployment/airflow-api-server", "Deployment/airflow-dag-processor",
                "Deployment/airflow-triggerer"}
    expected |= {"Deployment/airflow-worker"} if executor == "CeleryExecutor" else {"pod_template_file.yaml"}
    if executor == "CeleryExecutor":
        pods.pop("Deployment/airflow-flower")  # talks to the broker only; the chart gives it no wait either
    assert set(pods) == expected
    for where, pod in pods.items():
        init = pod.get("initContainers") or []
        assert init and init[0]["name"] == schema_wait.NAME, (where, [c["name"] for c in init])
        wait = init[0]
        # `command` replaces the image's ENTRYPOINT (`airflow`), and with no `args` its CMD is not used: the
        # container runs exactly this, which the Postgres test runs.
        assert wait["command"] == schema_wait.command() and "args" not in wait, where
        assert wait["image"] == RUNTIME, where
        # The chart's own wait (args only, /entrypoint assumed) would run `airflow airflow db ...`: off everywhere.
        assert "wait-for-airflow-migrations" not in [c["name"] for c in init], where
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for mount in wait["volumeMounts"]:
            assert volumes[mount["name"]]["configMap"]["name"] == "airflow-config", (where, mount)
        names = [c["name"] for c in init]
        if where == "Deployment/airflow-api-server":
            assert names == [schema_wait.NAME, "sync-users"], names  # users are synced on the migrated schema
        else:
            assert names == [schema_wait.NAME], (where, names)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_migration_job_does_not_wait_and_the_wait_reads_the_platform_secret(official_chart_release,
                                                                                platform_chart, executor):
    objects = rendered(official_chart_release, "production", executor)
    (job,) = [o for o in objects if o["kind"] == "Job" and "migrations" in o["metadata"]["name"]]
    assert not job["spec"]["template"]["spec"].get("initContainers")  # it is what migrates
    scheduler = by_kind(objects, "Deployment")["airflow-scheduler"]["spec"]["template"]["spec"]
    (ref,) = [e["valueFrom"]["secretKeyRef"] for e in scheduler["initContainers"][0]["env"] if "valueFrom" in e]
    made = by_kind(render_platform(platform_chart, platform_values("production", random_payload())), "Secret")
    assert ref["key"] in made[ref["name"]]["data"]
    main = [c for c in scheduler["containers"] if c["name"] == "scheduler"][0]
    sql = [e for e in main["env"] if e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"][0]
    assert sql["valueFrom"]["secretKeyRef"] == ref, "the wait checks the database the scheduler uses"


def test_the_wait_stays_first_and_single_when_applied_again():
    values = {"apiServer": {"extraInitContainers": [{"name": "sync-users"}]}}
    once = schema_wait.with_schema_wait(values, "airflow", RUNTIME)
    twice = schema_wait.with_schema_wait(once, "airflow", RUNTIME)
    assert [c["name"] for c in twice["apiServer"]["extraInitContainers"]] == [schema_wait.NAME, "sync-users"]
    assert values == {"apiServer": {"extraInitContainers": [{"name": "sync-users"}]}}, "the input is not changed"
    assert set(twice) == set(schema_wait.COMPONENTS)
