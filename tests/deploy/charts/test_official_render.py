"""charts/airflow rendered: the official chart at the pinned release, by the real Helm engine, with our values
and the deploy's payload (skipped, lacking `official-chart`, where its source cannot be had).
"""

from __future__ import annotations

import configparser
import json

import pytest

from airstack.deploy import config
from airstack.deploy import auth_policy, chart_values, target
from airstack.deploy.chart_values import merge_values
from airstack.settings.deploy_file import AirflowOptions
from tests.deploy import official_chart
from tests.deploy.charts.render import (DNS_LABEL_MAX, ENVIRONMENTS, EXECUTORS, K8S_VERSIONS, ROOT, _quantity,
                                        assert_valid_kubernetes, by_kind, celery_set, dag_bundles, decoded,
                                        every_option, load_all, load_deploy, longest_names, name_problems,
                                        official_values, platform_chart_objects, platform_values, pod_template,
                                        random_payload, render, render_official)

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/",)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_dag_bundle_reaches_airflow_cfg_and_the_task_pods(official_chart_release, env):
    """dagProcessor.dagBundleConfigList becomes [dag_processor] dag_bundle_config_list in airflow.cfg, the one
    config every component and (mounted by the pod template) every KubernetesExecutor task pod reads."""
    objects = render_official(official_chart_release, env, AirflowOptions())
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(by_kind(objects, "ConfigMap")["airflow-config"]["data"]["airflow.cfg"])
    listed = json.loads(cfg["dag_processor"]["dag_bundle_config_list"])
    assert listed == dag_bundles()
    (bundle,) = listed
    assert bundle["classpath"] == "airflow.providers.git.bundles.git.GitDagBundle"
    assert bundle["kwargs"]["tracking_ref"] == "airstack/dags/integration" and bundle["kwargs"]["subdir"] == "dags"
    task_pod = pod_template(objects)
    mounts = [m for c in task_pod["spec"]["containers"] for m in c.get("volumeMounts", [])]
    assert any(m.get("subPath") == "airflow.cfg" for m in mounts), mounts
    # No DAG volume anywhere: the bundle is the only source of DAGs.
    assert not [v for o in objects for v in (o.get("spec", {}).get("template", {}).get("spec", {})
                                             .get("volumes") or []) if v.get("name") == "dags"]


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_official_chart_renders_valid_kubernetes(official_chart_release, env, executor):
    objects = render_official(official_chart_release, env, AirflowOptions(executor=executor))
    version = official_chart.pinned()[0]
    # The chart labels what it makes with its own version: this is the release deploy.yaml pins.
    assert {o["metadata"]["labels"].get("chart") for o in objects} >= {f"airflow-{version}"}
    if executor == "KubernetesExecutor":
        objects = [*objects, pod_template(objects)]
    assert_valid_kubernetes(objects, K8S_VERSIONS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_task_pods_get_the_task_sizing(official_chart_release, env):
    """KubernetesExecutor: each task's pod gets `workers.resources` (chart 1.19.0's pod template)."""
    written = official_values(env)["workers"]["resources"]
    (container,) = [c for c in pod_template(render_official(official_chart_release, env, AirflowOptions()))
                    ["spec"]["containers"] if c["name"] == "base"]
    assert container["resources"] == written
    # Not the Celery workers' sizing, which is larger.
    assert _quantity(celery_set(official_values(env))["resources"]["requests"]["memory"]) > _quantity(
        container["resources"]["requests"]["memory"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_celery_workers_get_the_celery_sizing(official_chart_release, env):
    objects = render_official(official_chart_release, env, AirflowOptions(executor="CeleryExecutor"))
    workers = {name: obj for name, obj in by_kind(objects, "Deployment").items() if "worker" in name}
    assert set(workers) == {"airflow-worker"}  # one worker Deployment, the chart's default name
    written = celery_set(official_values(env))
    worker = workers["airflow-worker"]
    assert worker["spec"]["replicas"] == written["replicas"]
    (container,) = [c for c in worker["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    assert container["resources"] == written["resources"]
    assert "pod_template_file.yaml" not in by_kind(objects, "ConfigMap")["airflow-config"]["data"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_official_chart_renders_no_secret_of_its_own(official_chart_release, executor):
    """Every Secret comes from the platform chart (settings, metadata, broker): the official chart
    renders none, in particular not its `<release>-broker-url` hook Secret with `%!s(<nil>)`."""
    for env in ENVIRONMENTS:
        objects = render_official(official_chart_release, env, every_option(executor))
        assert by_kind(objects, "Secret") == {}, (env, executor)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_server_pods_sync_users_from_the_platform_secrets(official_chart_release, platform_chart, env):
    """The sync-users init container renders as the deploy builds it (the chart passes init containers
    through `tpl`), and every Secret it reads is one the platform chart makes from settings."""
    script = (ROOT / chart_values.USERS_SCRIPT).read_text()
    tgt = target.Target("airflow", "airflow-platform", "airflow")
    payload = chart_values.airflow_values(tgt, "registry.example/airflow:0123abcd", {}, "digest",
                                          users_script=script)
    rendered = official_chart_release.render(values=merge_values(official_values(env), payload), name="airflow",
                                             namespace="airflow", is_install=True)
    objects = [d for p, t in rendered.items() if not p.endswith("NOTES.txt") for d in load_all(t)]
    api = by_kind(objects, "Deployment")["airflow-api-server"]
    assert api["spec"]["replicas"] == official_values(env)["apiServer"]["replicas"]
    (init,) = [c for c in api["spec"]["template"]["spec"]["initContainers"] if c["name"] == "sync-users"]
    assert init["args"] == [script] and init["image"] == "registry.example/airflow:0123abcd"
    config_map = by_kind(objects, "ConfigMap")["airflow-config"]["data"]["airflow.cfg"]
    assert f"auth_manager = {auth_policy.FAB_AUTH_MANAGER}" in config_map
    made = by_kind(render(platform_chart, platform_values(env, random_payload())), "Secret")
    for item in init["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["key"] in made[ref["name"]]["data"], item["name"]


def test_the_secret_check_finds_the_nil_broker_secret(official_chart_release):
    """Without the deploy's data.brokerUrlSecretName, 1.19.0 renders a Secret whose value is nil."""
    values = merge_values(official_values("integration"), chart_values.airflow_values(
        target.Target("airflow", "airflow-platform", "airflow"), "r/airflow:t", {}, "d"))
    del values["data"]["brokerUrlSecretName"]
    rendered = official_chart_release.render(values=values, name="airflow", namespace="airflow", is_install=True)
    objects = [d for p, t in rendered.items() if not p.endswith("NOTES.txt") for d in load_all(t)]
    assert decoded(by_kind(objects, "Secret")["airflow-broker-url"]) == {"connection": "%!s(<nil>)"}


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_longest_preview_name_fits_every_derived_name(official_chart_release, platform_chart, executor):
    """A preview's release is at most 40 characters (config.preview_name): every name the official
    and the platform chart derive from it, with every option on, fits Kubernetes' limits."""
    release = config.preview_name("feature/" + "x" * 100)  # cut to 33 characters, then -<6-char hash>
    assert len(release) == config.PREVIEW_NAME_MAX
    tgt = target.target(load_deploy("integration").helm, release)
    objects = render_official(official_chart_release, "production", every_option(executor), release=release)
    objects += platform_chart_objects(platform_chart, tgt)
    if executor == "KubernetesExecutor":
        objects.append(pod_template(objects, release))
    assert name_problems(objects) == [], longest_names(objects)
    assert len(tgt.namespace) <= DNS_LABEL_MAX and len(tgt.platform_release) <= 53
    # What stays within 63 by the 40-character cap: the longest label-limited name is the migration Job.
    jobs = [o["metadata"]["name"] for o in objects if o["kind"] in ("Job", "Service")]
    assert max(map(len, jobs)) == len(f"{release}-run-airflow-migrations") == 63


def test_the_name_check_finds_a_53_character_release(official_chart_release):
    """The check bites: at Helm's own limit of 53 characters, the migration Job's name is over 63."""
    release = "airflow-" + "x" * 45
    problems = name_problems(render_official(official_chart_release, "integration", AirflowOptions(), release))
    assert f"Job/{release}-run-airflow-migrations: name of 76 > 63" in problems
