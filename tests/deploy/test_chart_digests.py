"""Every image a deploy names is pinned by digest: the official chart at the pinned release, rendered by the real
Helm engine (helm-python-sdk) with production's values files and the deploy's stdin payload.

Chart 1.19.0 has a ``digest`` field for ``images.airflow`` only (its values.schema.json, kept in charts/). The task
pods' image (``images.pod_template``), flower's (``images.flower``) and the KubernetesExecutor's own
``[kubernetes_executor] worker_container_repository``/``worker_container_tag`` print ``repository:tag``; the deploy
gives them the tag ``<content tag>@sha256:...``, so they read ``registry/airflow:<tag>@sha256:...``, which
Kubernetes pulls by its digest.
"""

from __future__ import annotations

import configparser

import pytest
import yaml

from airstack.deploy import chart_values, target
from airstack.deploy.chart_values import merge_values
from airstack.deploy.shipping import Images
from airstack.settings.deploy_file import AirflowOptions
from tests.deploy.charts.render import (EXECUTORS, by_kind, dag_bundles, every_option, load_all,  # noqa: F401
                                        official_chart_release, official_values, pod_template)

RUNTIME = "registry.example:5000/team/airflow:0123abcd@sha256:" + "ab" * 32
WORKER = "registry.example:5000/team/etl-basic:4567ef01@sha256:" + "cd" * 32
# The chart's own third-party image that no deploy resolves yet: statsd-exporter, by the chart's tag (see the
# last test: it must stay the only one).
THIRD_PARTY = ("quay.io/prometheus/statsd-exporter:",)


def render_pinned(chart, env: str, options: AirflowOptions) -> list[dict]:
    tgt = target.Target("airflow", "airflow-platform", "airflow")
    payload = chart_values.airflow_values(tgt, RUNTIME, {"etl-basic": WORKER}, "digest", options,
                                          users_script="print('sync')", dag_bundles=dag_bundles())
    rendered = chart.render(values=merge_values(official_values(env), payload), name="airflow", namespace="airflow",
                            is_install=True)
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt") for doc in load_all(text)]


def container_images(tree, where: str = "") -> list[tuple[str, str]]:
    """(where, image) of every container, init container and ephemeral container anywhere in ``tree``."""
    found = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(value, list):
                found += [(f"{where}/{c.get('name')}", c["image"]) for c in value if isinstance(c, dict)]
            else:
                found += container_images(value, where)
    elif isinstance(tree, list):
        for value in tree:
            found += container_images(value, where)
    return found


def every_image(objects: list[dict]) -> list[tuple[str, str]]:
    """Each workload's containers, the pod template ConfigMap's task pod, and the executor's own image setting."""
    images = []
    for obj in objects:
        images += container_images(obj, f"{obj['kind']} {obj['metadata']['name']}")
    if "pod_template_file.yaml" in by_kind(objects, "ConfigMap")["airflow-config"]["data"]:
        images += container_images(pod_template(objects), "ConfigMap airflow-config pod_template_file.yaml")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(by_kind(objects, "ConfigMap")["airflow-config"]["data"]["airflow.cfg"])
    for section in ("kubernetes", "kubernetes_executor"):
        if cfg.has_option(section, "worker_container_repository"):
            images.append((f"airflow.cfg [{section}] worker_container_*",
                           f"{cfg[section]['worker_container_repository']}:{cfg[section]['worker_container_tag']}"))
    return images


def _ours(image: str) -> bool:
    return not image.startswith(THIRD_PARTY)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_production_runs_every_image_of_ours_by_digest(official_chart_release, executor):  # noqa: F811
    objects = render_pinned(official_chart_release, "production", every_option(executor))
    images = every_image(objects)
    kinds = {where.split(" ", 1)[0] for where, _ in images}
    assert {"Deployment", "Job"} <= kinds, kinds  # the components and the migration Job were looked at
    unpinned = [(where, image) for where, image in images if _ours(image) and "@sha256:" not in image]
    assert not unpinned, unpinned
    ours = {image for _, image in images if _ours(image)}
    # One runtime image everywhere: the chart's digest field gives registry/airflow@sha256:..., the fields without
    # one registry/airflow:<tag>@sha256:... (the same digest).
    assert {image.split("@", 1)[1] for image in ours} == {RUNTIME.split("@", 1)[1]}, ours
    deployments = by_kind(objects, "Deployment")
    (scheduler,) = deployments["airflow-scheduler"]["spec"]["template"]["spec"]["containers"][:1]
    assert scheduler["image"] == "registry.example:5000/team/airflow@sha256:" + "ab" * 32
    env = {e["name"]: e.get("value") for e in scheduler["env"]}
    assert yaml.safe_load(env["AIRSTACK_IMAGES"]) == {"etl-basic": WORKER}, "the worker images, by digest"
    if executor == "KubernetesExecutor":
        task_pod = {c["name"]: c["image"] for c in pod_template(objects)["spec"]["containers"]}
        assert task_pod["base"] == RUNTIME
        executor_image = [image for where, image in images if "[kubernetes_executor]" in where]
        assert executor_image == [RUNTIME], "the executor's own image setting overrides the pod template's"
    else:
        (flower,) = deployments["airflow-flower"]["spec"]["template"]["spec"]["containers"]
        assert flower["image"] == RUNTIME and flower["command"] == ["/usr/bin/env"]


def test_the_only_image_not_pinned_is_the_charts_statsd_exporter(official_chart_release):  # noqa: F811
    """A third-party image of the chart (statsd-exporter) is still named by the chart's tag: the deploy does not
    resolve it yet. This keeps the list from growing unseen."""
    objects = render_pinned(official_chart_release, "production", every_option("CeleryExecutor"))
    unpinned = sorted({image for _, image in every_image(objects) if "@sha256:" not in image})
    assert unpinned == ["quay.io/prometheus/statsd-exporter:v0.28.0"], unpinned


def test_a_tag_alone_is_what_the_check_finds(official_chart_release):  # noqa: F811
    """The check fails where the deploy gives a tag (as before digests): the task pods and the executor's setting."""
    tgt = target.Target("airflow", "airflow-platform", "airflow")
    payload = chart_values.airflow_values(tgt, RUNTIME.split("@")[0], {}, "digest", AirflowOptions())
    rendered = official_chart_release.render(values=merge_values(official_values("production"), payload),
                                             name="airflow", namespace="airflow", is_install=True)
    objects = [d for p, t in sorted(rendered.items()) if not p.endswith("NOTES.txt") for d in load_all(t)]
    unpinned = {where for where, image in every_image(objects) if _ours(image) and "@sha256:" not in image}
    assert "ConfigMap airflow-config pod_template_file.yaml/base" in unpinned
    assert "airflow.cfg [kubernetes_executor] worker_container_*" in unpinned


def test_image_values_split_a_pinned_reference():
    assert chart_values.image_values(RUNTIME) == {"repository": "registry.example:5000/team/airflow", "tag": "0123abcd",
                                                  "digest": "sha256:" + "ab" * 32}
    assert chart_values.image_values("registry.example:5000/airflow:t1") == {
        "repository": "registry.example:5000/airflow", "tag": "t1"}
    imgs = Images("r", {"airflow": "r/airflow:t1", "etl": "r/etl:t2"}, ["etl"], {"airflow": "sha256:" + "0" * 64})
    assert imgs.pinned("airflow") == "r/airflow:t1@sha256:" + "0" * 64 and imgs.pinned("etl") == "r/etl:t2"
    assert imgs.unpinned() == ["etl"]
