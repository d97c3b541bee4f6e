"""KubernetesPodOperator tasks by project name (seed 004's conventions).

- A project (``example1``) keeps its task scripts in ``dags/tasks/<project>/``. They travel in the
  pod itself: the folder, as it is in the DAG bundle version the DagRun runs (this file's own
  version), is packed into the pod's ``AIRSTACK_TASK_FILES`` and unpacked at start into
  ``/opt/airflow/dags/tasks/<project>/`` (an emptyDir). So a pod runs the scripts of its DagRun's
  commit, never those of a newer deploy, and no volume or image has to be kept in step with DAGs.
- Its files live under ``<data volume>/<project>``, mounted at ``/data``.
- It has zero or one ConfigMap and zero or one Secret, each named after the project; both
  are loaded as environment variables and both are optional. Their values live in
  ``settings/<env>/secret.yaml`` under ``projects.<project>`` (``config`` / ``secret``).

A task is a plain KubernetesPodOperator, here and everywhere: nothing in this file knows about the
local env. There its pod runs as a local Docker container, by a cluster policy that only the local
env and the DAG tests set (``airstack/localenv/pod_policy.py``, not part of the DAG bundle).
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path

from kubernetes.client import models as k8s

from common.images import worker_image

DAGS_MOUNT = "/opt/airflow/dags"
DATA_MOUNT = "/data"
TASKS_FOLDER = Path(__file__).resolve().parents[1] / "tasks"  # dags/tasks of this bundle version
TASK_FILES_ENV = "AIRSTACK_TASK_FILES"
# One environment value must stay under Linux's 128 KiB per string (MAX_ARG_STRLEN), and a pod's
# spec under the API server's limits: a project whose scripts pack to more belongs in its image.
TASK_FILES_MAX = 96 * 1024
# What the pod runs first (``python -c``): unpack the project's folder, then run the script as __main__.
BOOTSTRAP = (
    "import base64, io, os, runpy, sys, tarfile\n"
    f"d = os.path.join({DAGS_MOUNT!r}, 'tasks', os.environ['PROJECT'])\n"
    "os.makedirs(d, exist_ok=True)\n"
    "t = tarfile.open(fileobj=io.BytesIO(base64.b64decode(os.environ['AIRSTACK_TASK_FILES'])), mode='r:gz')\n"
    "t.extractall(d, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))\n"
    "s = os.path.join(d, sys.argv[1])\n"
    "sys.argv = [s, *sys.argv[2:]]\n"
    "sys.path.insert(0, os.path.dirname(s))\n"
    "runpy.run_path(s, run_name='__main__')\n"
)
DATA_CLAIM = os.environ.get("AIRSTACK_DATA_CLAIM", "airflow-data")
NAMESPACE = os.environ.get("AIRSTACK_K8S_NAMESPACE", "airflow")

# A ConfigMap/Secret name, and a sub path, must be a DNS-1123 label.
_PROJECT = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_project(project: str) -> str:
    if not _PROJECT.match(project):
        raise ValueError(f"project {project!r} must be a DNS-1123 label (lowercase letters, digits, '-')")
    return project


def project_volumes(project: str) -> tuple[list[k8s.V1Volume], list[k8s.V1VolumeMount]]:
    """Where the task files are unpacked (an emptyDir) and the project's data folder (read-write)."""
    check_project(project)
    volumes = [
        k8s.V1Volume(name="dags", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="64Mi")),
        k8s.V1Volume(name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=DATA_CLAIM)),
    ]
    mounts = [
        k8s.V1VolumeMount(name="dags", mount_path=DAGS_MOUNT),
        k8s.V1VolumeMount(name="data", mount_path=DATA_MOUNT, sub_path=project),
    ]
    return volumes, mounts


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """The same bytes for the same files: no times or owners (a DAG version changes only with its files)."""
    if "__pycache__" in info.name.split("/") or info.name.endswith(".pyc"):
        return None
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def task_files(project: str, folder: Path | None = None) -> str:
    """``dags/tasks/<project>/`` as base64 of a reproducible tar.gz (what the pod unpacks)."""
    folder = (folder or TASKS_FOLDER) / check_project(project)
    if not folder.is_dir():
        raise ValueError(f"project {project!r} has no task folder {folder}")
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False, filter=_reset)
    packed = base64.b64encode(raw.getvalue()).decode()
    if len(packed) > TASK_FILES_MAX:
        raise ValueError(f"dags/tasks/{project} packs to {len(packed) // 1024} KiB, over {TASK_FILES_MAX // 1024} "
                         "KiB: keep data out of it, or install large code in the project's image")
    return packed


def project_env_from(project: str) -> list[k8s.V1EnvFromSource]:
    """The project's ConfigMap and Secret as environment variables (each may be absent)."""
    check_project(project)
    return [
        k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=project, optional=True)),
        k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=project, optional=True)),
    ]


def project_pod(*, project: str, task_id: str, image: str, script: str, arguments: Sequence[str] = (),
                cpu: str = "250m", memory: str = "512Mi", **kwargs):
    """A KubernetesPodOperator that runs ``dags/tasks/<project>/<script>`` in worker image ``image``."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    volumes, mounts = project_volumes(project)
    return KubernetesPodOperator(
        task_id=task_id,
        name=f"{project}-{task_id}".replace("_", "-"),
        namespace=kwargs.pop("namespace", NAMESPACE),
        image=worker_image(image),
        # The script, from the task files this DagRun's bundle version carries (BOOTSTRAP unpacks them).
        cmds=["python", "-c", BOOTSTRAP, script],
        arguments=list(arguments),
        env_from=project_env_from(project),
        env_vars={"PROJECT": project, "DATA_DIR": DATA_MOUNT, TASK_FILES_ENV: task_files(project)},
        volumes=volumes,
        volume_mounts=mounts,
        labels={"airflow-project": project},
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": cpu, "memory": memory}, limits={"memory": memory}),
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=1000),
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        **kwargs,
    )
