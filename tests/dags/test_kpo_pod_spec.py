"""KubernetesPodOperator tasks: the pod each would request is a valid Kubernetes Pod and follows seed 004's
conventions (no cluster here: the operator's own pod request object is built and validated)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from airstack import paths
from airstack.dagcheck.parse import dag_files, parse_file

K8S_VERSIONS = ["1.29", kubernetes_validate.latest_version()]


def _pod_tasks():
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    folder = paths.dags_folder()
    dags = [d for f in dag_files(folder) for d in parse_file(f, folder)]
    return [t for d in dags for t in d.tasks if isinstance(t, KubernetesPodOperator)]


def _manifest(task) -> dict:
    from kubernetes.client import ApiClient

    pod = task.build_pod_request_obj(context=None, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


def test_there_are_pod_tasks():
    assert _pod_tasks(), "expected at least the k8s_project_example DAG's pod tasks"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_pod_requests_are_valid(version):
    for task in _pod_tasks():
        manifest = _manifest(task)
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{task.dag_id}.{task.task_id}: invalid Pod for Kubernetes {version}: {exc.message} "
                        f"at {'/'.join(map(str, exc.path))}", pytrace=False)


def test_pod_follows_project_conventions():
    task = next(t for t in _pod_tasks() if (t.dag_id, t.task_id) == ("k8s_project_example", "summarise_orders"))
    spec = _manifest(task)["spec"]
    container = spec["containers"][0]
    assert container["image"].rsplit("/", 1)[-1].startswith("etl-basic:")
    assert container["command"] == ["python", "/opt/airflow/dags/tasks/example1/transform.py"]
    # Zero or one ConfigMap and Secret, named after the project: both optional.
    assert {"configMapRef": {"name": "example1", "optional": True}} in container["envFrom"]
    assert {"secretRef": {"name": "example1", "optional": True}} in container["envFrom"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["dags"] == {"name": "dags", "mountPath": "/opt/airflow/dags", "readOnly": True}
    assert mounts["data"] == {"name": "data", "mountPath": "/data", "subPath": "example1"}
    claims = {v["name"]: v["persistentVolumeClaim"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
    assert claims["dags"] == {"claimName": "airflow-dags", "readOnly": True}
    assert spec["securityContext"]["runAsNonRoot"] is True
    # The script it runs exists in the repository, where the DAGs volume will have it.
    assert (paths.dags_folder() / "tasks" / "example1" / "transform.py").is_file()


def test_project_name_must_be_a_dns_label():
    import sys

    sys.path.insert(0, str(paths.dags_folder()))
    from common.kpo import project_env_from

    with pytest.raises(ValueError, match="DNS-1123"):
        project_env_from("Example_1")


def test_validation_rejects_a_broken_pod():
    """The validator is strict: the same manifest with a typo'd field and a bad type fails."""
    manifest = _manifest(_pod_tasks()[0])
    manifest["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, K8S_VERSIONS[-1], strict=True)
    manifest = _manifest(_pod_tasks()[0])
    manifest["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, K8S_VERSIONS[-1], strict=True)
