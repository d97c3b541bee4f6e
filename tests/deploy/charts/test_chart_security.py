"""The rendered charts pass checkov's Kubernetes checks, waivers applied (airstack/gate/security_scan.py).

Both charts are rendered with the real Helm engine as the deploy installs them: charts/platform with each
environment's values and a payload of random secrets, the official chart 1.19.0 with the environment's values
and the deploy's stdin payload (the runtime image by digest, the users' sync, the DAG bundle) for every executor
the environments' deploy.yaml use, each object in the release's namespace (as ``helm --namespace`` puts it).
checkov scans them all in one run (the charts lane); a failed check no waiver covers, or a waiver of
security/waivers.yaml that matches nothing, fails. The posture the waivers lean on is asserted here too.
"""

from __future__ import annotations

import hashlib

import pytest
import yaml

from airstack.gate import security_scan
from airstack.deploy import pod_security, schema_wait
from airstack.deploy import config
from airstack.settings.deploy_file import AirflowOptions
from tests.deploy.charts import render as charts

SCANNED = "kubernetes"
DIGEST = "sha256:" + hashlib.sha256(b"runtime image").hexdigest()


def executors() -> list[str]:
    """The executors the deployed environments run (settings/<env>/deploy.yaml's airflow.executor)."""
    found = set()
    for env in charts.ENVIRONMENTS:
        deploy = yaml.safe_load((charts.ROOT / "settings" / env / "deploy.yaml").read_text())
        found.add(deploy["airflow"]["executor"])
    return sorted(found)


def official_objects(chart, env: str, executor: str) -> list[dict]:
    store = {"base": "s3://bucket-x/prefix"}
    ingress = config.load(charts.ROOT, env).spec.airflow.ingress  # as deployed: its ingress and trusted proxies
    options = AirflowOptions(executor=executor, remote_logging=store, storage=store, ingress=ingress,
                             metrics={"statsd": True, "prometheus_rules": True})
    tgt = charts.target.Target("airflow", "airflow-platform", "airflow")
    payload = charts.chart_values.airflow_values(
        tgt, f"registry.example/airflow:0123abcd@{DIGEST}", {"etl-basic": f"r/e:t@{DIGEST}"}, DIGEST, options,
        users_script="print('sync')", dag_bundles=charts.dag_bundles())
    rendered = chart.render(values=charts.merge_values(charts.official_values(env), payload), name="airflow",
                            namespace=charts.NAMESPACE, is_install=True)
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in charts.load_all(text)]


@pytest.fixture(scope="module")
def manifests(platform_chart, official_chart_release, tmp_path_factory) -> dict[str, list[dict]]:
    """Every environment's and executor's objects, also written where checkov reads them."""
    folder = tmp_path_factory.mktemp("manifests")
    rendered = {}
    for env in charts.ENVIRONMENTS:
        for executor in executors():
            objects = charts.render(platform_chart, charts.platform_values(env, charts.random_payload()))
            objects += official_objects(official_chart_release, env, executor)
            for obj in objects:
                obj["metadata"]["namespace"] = charts.NAMESPACE
            rendered[f"{env}-{executor}"] = objects
            (folder / f"{env}-{executor}.yaml").write_text(yaml.safe_dump_all(objects))
    rendered["folder"] = folder
    return rendered


def pods(objects: list[dict]) -> dict[str, dict]:
    """Each workload's pod spec by ``Kind/name``."""
    return {f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"] for o in objects
            if o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet")}


def test_checkov_finds_no_unwaived_kubernetes_finding(manifests):
    failed, problems = security_scan.check(["--framework", SCANNED, "-d", str(manifests["folder"])], (SCANNED,),
                                           charts.ROOT)
    assert failed > 0, "checkov checked nothing: the waivers would all be unused"
    assert problems == []


def test_every_container_the_deploy_adds_is_hardened(manifests):
    for name, objects in manifests.items():
        if name == "folder":
            continue
        added = [c for spec in pods(objects).values() for c in spec.get("initContainers", [])
                 if c["name"] in (schema_wait.NAME, "sync-users")]
        assert {c["name"] for c in added} == {schema_wait.NAME, "sync-users"}, name
        for container in added:
            assert container["securityContext"] == pod_security.CONTAINER_CONTEXT, (name, container["name"])


def test_only_the_scheduler_mounts_a_service_account_token(manifests):
    """The token the KubernetesExecutor's scheduler needs (it starts task pods); every other component's
    ServiceAccount turns the mount off (the chart has no pod-level key: security/waivers.yaml)."""
    for name, objects in manifests.items():
        if name == "folder":
            continue
        accounts = {o["metadata"]["name"]: o.get("automountServiceAccountToken", True) for o in objects
                    if o["kind"] == "ServiceAccount"}
        mounting = {n for n, mounts in accounts.items() if mounts}
        assert mounting <= {"airflow-scheduler", "airflow-worker"}, (name, mounting)


def _admits(peer: dict, labels: dict) -> bool:
    """Whether a same-namespace podSelector peer selects a pod with ``labels``."""
    selector = (peer.get("podSelector") or {}).get("matchLabels")
    return "namespaceSelector" not in peer and selector is not None and selector.items() <= labels.items()


def test_ingress_reaches_only_the_api_server(manifests):
    """The platform chart denies all ingress in the namespace; the api-server admits the ingress's addresses (each
    environment's trusted proxies: its ALB's subnets) and Airflow's own pods, whose task pods and Celery workers
    call its Execution API (policies add up: no other pod is reachable from outside Airflow)."""
    for name, objects in manifests.items():
        if name == "folder":
            continue
        env = name.split("-")[0]
        policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
        deny = policies["platform-default-deny-ingress"]
        assert (deny["podSelector"], deny["policyTypes"], deny.get("ingress")) == ({}, ["Ingress"], None)
        api = policies["airflow-api-server-policy"]
        sources = [peer for rule in api["ingress"] for peer in rule["from"]]
        proxies = config.load(charts.ROOT, env).spec.airflow.ingress.trusted_proxies
        assert proxies and [p["ipBlock"]["cidr"] for p in sources if "ipBlock" in p] == proxies, (name, sources)
        assert not [p for p in sources if "namespaceSelector" in p], (name, sources)
        workers = [o["spec"]["template"]["metadata"]["labels"] for o in objects
                   if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == "airflow-worker"]
        task_pod = charts.load_all(next(o["data"]["pod_template_file.yaml"] for o in objects
                                        if o["kind"] == "ConfigMap" and "pod_template_file.yaml" in o.get("data", {})))
        for labels in [*workers, *(doc["metadata"]["labels"] for doc in task_pod if doc)]:
            assert any(_admits(peer, labels) for peer in sources), (name, labels, sources)
        for other, spec in policies.items():  # no other policy admits another namespace
            for rule in spec.get("ingress") or []:
                if other != "airflow-api-server-policy":
                    assert all("namespaceSelector" not in peer for peer in rule.get("from", [])), (name, other)


def test_every_pod_runs_as_non_root_with_the_runtime_seccomp_profile(manifests):
    for name, objects in manifests.items():
        if name == "folder":
            continue
        for workload, spec in pods(objects).items():
            context = spec.get("securityContext") or {}
            assert context.get("runAsNonRoot") is True, (name, workload)
            assert context.get("seccompProfile") == {"type": "RuntimeDefault"}, (name, workload)


def test_the_scan_fails_an_unwaived_finding_and_a_stale_waiver(tmp_path):
    """The same scan over a bare pod (privileged, root) with a waiver of a check it passes: both fail it."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "namespace": "airflow"},
           "spec": {"containers": [{"name": "c", "image": "busybox@" + DIGEST,
                                    "securityContext": {"privileged": True}}]}}
    (folder / "pod.yaml").write_text(yaml.safe_dump(pod))
    (tmp_path / "security").mkdir()
    (tmp_path / security_scan.WAIVERS).write_text(
        "kubernetes:\n  - {check: CKV_K8S_43, resource: Pod.airflow.bare, reason: it has a digest}\n")
    failed, problems = security_scan.check(["--framework", SCANNED, "-d", str(folder)], (SCANNED,), tmp_path)
    assert failed > 0
    assert "unwaived: pod.yaml: CKV_K8S_16 Pod.airflow.bare: Container should not be privileged" in problems
    stale = f"{security_scan.WAIVERS}: kubernetes CKV_K8S_43 Pod.airflow.bare: waives nothing (remove it)"
    assert problems[-1] == stale
