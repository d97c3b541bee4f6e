"""Every container the official chart 1.19.0 starts runs the runtime image, by its digest, or a known image that is
not Airflow: rendered by the real Helm engine with each environment's files and the deploy's whole payload (both
executors, every option, the users' sync init container, the DAG bundle), every kind, init containers included,
and the KubernetesExecutor's task pod template. A cluster that cannot pull from Docker Hub can start all of it."""

from __future__ import annotations

import pytest

from airstack.deploy import chart_values, target
from airstack.deploy.chart_values import merge_values
from tests.deploy.charts.render import (ENVIRONMENTS, EXECUTORS, ROOT, by_kind, dag_bundles, every_option, load_all,
                                        official_chart_release, official_values, pod_template)

__all__ = ["official_chart_release"]  # the fixture used here
DIGEST = "sha256:" + "ab" * 32
RUNTIME = f"registry.example/airflow:0123abcd@{DIGEST}"
# Images that are not Airflow, by repository (the chart's own defaults for its helpers).
NOT_AIRFLOW = ("quay.io/prometheus/statsd-exporter", "registry.k8s.io/git-sync/git-sync", "redis")
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod")


def is_runtime(image: str) -> bool:
    """``RUNTIME`` as the chart prints it: ``repository@digest`` (images.airflow) or ``repository:tag@digest``."""
    named, _, digest = image.partition("@")
    return digest == DIGEST and named in ("registry.example/airflow", "registry.example/airflow:0123abcd")


def pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    """(``Kind/name``, pod spec) of every object that starts pods, and of the task pod template."""
    specs = []
    for obj in objects:
        spec = obj.get("spec") or {}
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "CronJob":
            specs.append((name, spec["jobTemplate"]["spec"]["template"]["spec"]))
        elif obj["kind"] in POD_KINDS:
            specs.append((name, spec if obj["kind"] == "Pod" else spec["template"]["spec"]))
    if "pod_template_file.yaml" in by_kind(objects, "ConfigMap")["airflow-config"]["data"]:  # KubernetesExecutor
        specs.append(("pod_template_file.yaml", pod_template(objects)["spec"]))
    return specs


def foreign_images(objects: list[dict]) -> list[str]:
    """Each container (init ones included) whose image is neither the runtime image nor a known non-Airflow one."""
    found = []
    for where, spec in pod_specs(objects):
        for field in ("initContainers", "containers", "ephemeralContainers"):
            for container in spec.get(field) or []:
                image = container["image"]
                if not is_runtime(image) and image.rsplit(":", 1)[0] not in NOT_AIRFLOW:
                    found.append(f"{where} {field} {container['name']}: {image}")
    return found


def rendered(chart, env: str, executor: str, drop_images: tuple[str, ...] = ()) -> list[dict]:
    payload = chart_values.airflow_values(
        target.Target("airflow", "airflow-platform", "airflow"), RUNTIME, {"etl-basic": "r/e:t"}, "digest",
        every_option(executor), users_script=(ROOT / chart_values.USERS_SCRIPT).read_text(),
        dag_bundles=dag_bundles())
    for name in drop_images:
        del payload["images"][name]
    text = chart.render(values=merge_values(official_values(env), payload), name="airflow", namespace="airflow",
                        is_install=True)
    return [doc for path, body in sorted(text.items()) if not path.endswith("NOTES.txt") for doc in load_all(body)]


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_container_runs_the_runtime_image(official_chart_release, env, executor):
    objects = rendered(official_chart_release, env, executor)
    assert foreign_images(objects) == []
    names = {c["name"] for _, spec in pod_specs(objects)
             for c in [*spec["containers"], *(spec.get("initContainers") or [])] if is_runtime(c["image"])}
    assert {"sync-users", "api-server", "scheduler"} <= names  # init containers are looked at too
    if executor == "CeleryExecutor":
        (flower,) = by_kind(objects, "Deployment")["airflow-flower"]["spec"]["template"]["spec"]["containers"]
        assert is_runtime(flower["image"]), flower["image"]
        assert "worker" in names and "flower" in names


def test_the_check_finds_flower_on_the_chart_default(official_chart_release):
    """Without the deploy's images.flower, chart 1.19.0 runs flower on apache/airflow: the check says so."""
    objects = rendered(official_chart_release, "production", "CeleryExecutor", drop_images=("flower",))
    found = foreign_images(objects)
    assert len(found) == 1 and found[0].startswith("Deployment/airflow-flower containers flower: apache/airflow:")
