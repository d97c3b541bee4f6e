"""KubernetesPodOperator tasks by project name (seed 004's conventions).

- A project (``example1``) keeps its task scripts in ``dags/tasks/<project>/``; worker pods
  mount the DAGs volume read-only at ``/opt/airflow/dags``.
- Its files live under ``<data volume>/<project>``, mounted at ``/data``.
- It has zero or one ConfigMap and zero or one Secret, each named after the project; both
  are loaded as environment variables and both are optional. Their values live in
  ``settings/<env>/secret.yaml`` under ``projects.<project>`` (``config`` / ``secret``).

In the local env (``AIRSTACK_LOCAL_PODS=docker``) the same task runs its pod as a local Docker
container instead, through the tooling's pod runner (``airstack.localenv.pods``, imported only
then: it is not part of the DAG bundle); everywhere else it is a plain KubernetesPodOperator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from kubernetes.client import models as k8s

from common.images import worker_image

DAGS_MOUNT = "/opt/airflow/dags"
DATA_MOUNT = "/data"
DAGS_CLAIM = os.environ.get("AIRSTACK_DAGS_CLAIM", "airflow-dags")
DATA_CLAIM = os.environ.get("AIRSTACK_DATA_CLAIM", "airflow-data")
NAMESPACE = os.environ.get("AIRSTACK_K8S_NAMESPACE", "airflow")

# A ConfigMap/Secret name, and a sub path, must be a DNS-1123 label.
_PROJECT = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_project(project: str) -> str:
    if not _PROJECT.match(project):
        raise ValueError(f"project {project!r} must be a DNS-1123 label (lowercase letters, digits, '-')")
    return project


def project_volumes(project: str) -> tuple[list[k8s.V1Volume], list[k8s.V1VolumeMount]]:
    """The DAGs volume (read-only) and the project's data folder (read-write)."""
    check_project(project)
    volumes = [
        k8s.V1Volume(name="dags", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=DAGS_CLAIM, read_only=True)),
        k8s.V1Volume(name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=DATA_CLAIM)),
    ]
    mounts = [
        k8s.V1VolumeMount(name="dags", mount_path=DAGS_MOUNT, read_only=True),
        k8s.V1VolumeMount(name="data", mount_path=DATA_MOUNT, sub_path=project),
    ]
    return volumes, mounts


def project_env_from(project: str) -> list[k8s.V1EnvFromSource]:
    """The project's ConfigMap and Secret as environment variables (each may be absent)."""
    check_project(project)
    return [
        k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=project, optional=True)),
        k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=project, optional=True)),
    ]


_operator_class = None


def _local_pod_runner():
    """The local pod runner when the local env asks for it (``AIRSTACK_LOCAL_PODS=docker``), else None."""
    if os.environ.get("AIRSTACK_LOCAL_PODS", "") != "docker":
        return None
    from airflow.sdk.exceptions import AirflowFailException

    try:
        from airstack.localenv import pods
    except ImportError as exc:
        raise AirflowFailException(f"AIRSTACK_LOCAL_PODS=docker, but the local pod runner cannot be imported ({exc}): "
                                   "run the task in the local env (`nox -s up`) or the DAG tests, where airstack "
                                   "is importable") from None
    return pods


def _project_pod_operator():
    """KubernetesPodOperator, run locally as a container when the local env asks for it (built once)."""
    global _operator_class
    if _operator_class is not None:
        return _operator_class
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    class ProjectPodOperator(KubernetesPodOperator):
        """A project's pod task (seed 004); see ``airstack.localenv.pods`` for the local run."""

        def execute(self, context):
            local_pods = _local_pod_runner()
            if local_pods is None:
                return super().execute(context)
            if self.do_xcom_push:
                raise AirflowFailException("do_xcom_push is not supported by the local pod runner")
            self._local_pods = None
            try:
                self._local_pods = local_pods.DockerPods()
                local_pods.run_pod(self.build_pod_request_obj(context, dry_run=True), self.log,
                                   str(getattr(self.on_finish_action, "value", self.on_finish_action)),
                                   pods=self._local_pods)
            except local_pods.PodFailed as exc:  # the container failed: a retry may succeed
                raise AirflowException(str(exc)) from None
            except local_pods.LocalPodError as exc:  # the pod cannot run locally: retrying will not help
                raise AirflowFailException(str(exc)) from None
            except local_pods.AirstackError as exc:  # Docker failed under the task: a retry may succeed
                raise AirflowException(str(exc)) from None
            return None

        def on_kill(self) -> None:
            pods = getattr(self, "_local_pods", None)
            if pods is not None:
                pods.remove()
                return
            super().on_kill()

    _operator_class = ProjectPodOperator
    return _operator_class


def project_pod(*, project: str, task_id: str, image: str, script: str, arguments: Sequence[str] = (),
                cpu: str = "250m", memory: str = "512Mi", **kwargs):
    """A KubernetesPodOperator that runs ``dags/tasks/<project>/<script>`` in worker image ``image``."""
    volumes, mounts = project_volumes(project)
    return _project_pod_operator()(
        task_id=task_id,
        name=f"{project}-{task_id}".replace("_", "-"),
        namespace=kwargs.pop("namespace", NAMESPACE),
        image=worker_image(image),
        cmds=["python", f"{DAGS_MOUNT}/tasks/{project}/{script}"],
        arguments=list(arguments),
        env_from=project_env_from(project),
        env_vars={"PROJECT": project, "DATA_DIR": DATA_MOUNT},
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
