"""KubernetesPodOperator tasks: the pod each would request is a valid Kubernetes Pod and follows seed 004's
conventions (no cluster here: the operator's own pod request object is built and validated)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from airstack import paths
from tests.dags.conftest import dag_health

# What runs this module beyond its imports (read by airstack.gate.affected): any affected DAG.
AFFECTED_BY_DAGS = True

K8S_VERSIONS = ["1.29", kubernetes_validate.latest_version()]


@pytest.fixture(scope="module")
def all_pod_tasks() -> list:
    """The pod tasks of every DAG file that imports (one that does not is left out: its integrity test fails)."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    dags = dag_health().dags("pod specs (test_kpo_pod_spec.py)")
    return [t for d in dags for t in d.tasks if isinstance(t, KubernetesPodOperator)]


@pytest.fixture()
def pod_tasks(all_pod_tasks) -> list:
    """The pod tasks; without any, the tests that check them skip: test_there_are_pod_tasks tells it."""
    if not all_pod_tasks:
        pytest.skip("no pod tasks: see test_there_are_pod_tasks")
    return all_pod_tasks


def _manifest(task) -> dict:
    from kubernetes.client import ApiClient

    pod = task.build_pod_request_obj(context=None, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


def test_there_are_pod_tasks(all_pod_tasks):
    left_out = dag_health().left_out()
    if not all_pod_tasks and left_out:
        pytest.skip(f"no pod tasks in the DAG files that import; {'; '.join(left_out)}")
    assert all_pod_tasks, "expected at least the k8s_project_example DAG's pod tasks"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_pod_requests_are_valid(version, pod_tasks):
    for task in pod_tasks:
        manifest = _manifest(task)
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{task.dag_id}.{task.task_id}: invalid Pod for Kubernetes {version}: {exc.message} "
                        f"at {'/'.join(map(str, exc.path))}", pytrace=False)


def test_pod_follows_project_conventions(pod_tasks):
    reason = dag_health().import_failure(paths.dags_folder() / "k8s_project_example.py")
    if reason:
        pytest.skip(reason)
    task = next(t for t in pod_tasks if (t.dag_id, t.task_id) == ("k8s_project_example", "summarise_orders"))
    spec = _manifest(task)["spec"]
    container = spec["containers"][0]
    assert container["image"].rsplit("/", 1)[-1].startswith("etl-basic:")
    # The script runs from the task files the pod carries: this bundle version's dags/tasks/example1.
    assert container["command"][:2] == ["python", "-c"] and container["command"][3] == "transform.py"
    # Zero or one ConfigMap and Secret, named after the project: both optional.
    assert {"configMapRef": {"name": "example1", "optional": True}} in container["envFrom"]
    assert {"secretRef": {"name": "example1", "optional": True}} in container["envFrom"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["dags"] == {"name": "dags", "mountPath": "/opt/airflow/dags"}
    assert mounts["data"] == {"name": "data", "mountPath": "/data", "subPath": "example1"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["dags"] and volumes["data"]["persistentVolumeClaim"] == {"claimName": "airflow-data"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e["value"] for e in container["env"]}
    assert _unpacked(env["AIRSTACK_TASK_FILES"]) == _tree(paths.dags_folder() / "tasks" / "example1")


def _unpacked(packed: str) -> dict[str, bytes]:
    import base64
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(packed)), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_task_files_run_from_where_the_pod_unpacks_them(tmp_path):
    """BOOTSTRAP, as the pod runs it (`python -c`), unpacks the files and runs the script with its arguments,
    __file__ and sys.path as a script run from its folder has them; the packing is reproducible (a DAG's
    serialized form, and so its version, changes only when the files do)."""
    import os
    import subprocess
    import sys

    sys.path.insert(0, str(paths.dags_folder()))
    from common import kpo

    project = tmp_path / "tasks" / "demo"
    (project / "sub").mkdir(parents=True)
    (project / "helper.py").write_text("WORD = 'helped'\n")
    (project / "sub" / "run.py").write_text(
        "import sys\nfrom pathlib import Path\nsys.path.insert(0, str(Path(__file__).parents[1]))\n"
        "import helper\nprint(helper.WORD, *sys.argv[1:], Path(__file__).name)\n")
    packed = kpo.task_files("demo", tmp_path / "tasks")
    assert packed == kpo.task_files("demo", tmp_path / "tasks")
    mount = tmp_path / "mount"
    bootstrap = kpo.BOOTSTRAP.replace(repr(kpo.DAGS_MOUNT), repr(str(mount)))
    out = subprocess.run([sys.executable, "-c", bootstrap, "sub/run.py", "--date", "2024-01-01"],
                         env={**os.environ, "PROJECT": "demo", kpo.TASK_FILES_ENV: packed},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == ["helped", "--date", "2024-01-01", "run.py"]
    assert (mount / "tasks" / "demo" / "helper.py").read_text() == "WORD = 'helped'\n"
    (project / "big.bin").write_bytes(os.urandom(kpo.TASK_FILES_MAX))
    with pytest.raises(ValueError, match="dags/tasks/demo packs to"):
        kpo.task_files("demo", tmp_path / "tasks")


def test_project_name_must_be_a_dns_label():
    import sys

    sys.path.insert(0, str(paths.dags_folder()))
    from common.kpo import project_env_from

    with pytest.raises(ValueError, match="DNS-1123"):
        project_env_from("Example_1")


def test_validation_rejects_a_broken_pod(pod_tasks):
    """The validator is strict: the same manifest with a typo'd field and a bad type fails."""
    manifest = _manifest(pod_tasks[0])
    manifest["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, K8S_VERSIONS[-1], strict=True)
    manifest = _manifest(pod_tasks[0])
    manifest["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, K8S_VERSIONS[-1], strict=True)
