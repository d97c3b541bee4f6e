"""KubernetesPodOperator tasks run as local containers: a cluster policy, set in the local env only.

The DAGs know nothing of it: ``dags/`` imports no ``airstack`` (``tests/unit/test_structure.py``).
Airflow applies a task policy to each task of a DAG file as it parses the file (``DagBag.bag_dag``):
in the DAG processor, and again in the task's own process, which parses the file afresh before it
runs the task (Airflow 3's task runner; the DAG tests parse with a DagBag too, then ``dag.test()``).
With ``AIRSTACK_LOCAL_PODS=docker``, :func:`task_policy` gives every KubernetesPodOperator task,
``common.kpo.project_pod``'s or a plain one, an ``execute`` that runs the pod it would request as one
local container (:mod:`.pods`), and an ``on_kill`` that removes that container. They are instance
attributes, which DAG serialization does not carry: the serialized DAG, its task types and its
version are the same with or without the policy.

How Airflow gets it: ``local_settings/airflow_local_settings.py`` (:data:`SETTINGS_FOLDER`), which
Airflow imports at start when it is on ``sys.path``. The native runtime puts that folder, and the
``airstack`` it belongs to (:data:`TOOLING_ROOT`), on its services' ``PYTHONPATH``; the docker
runtime mounts this package read-only into its scheduler, which runs the tasks, with the folder
on its ``PYTHONPATH``; the DAG tests register the policy for the tests that run pods
(``tests/dags/conftest.py``). Nothing of it is in the runtime image or the charts: deployed, a
KubernetesPodOperator is just that.

Mapped KubernetesPodOperator tasks (``.partial().expand()``) are not covered: their tasks are made
after the policy ran.
"""

from __future__ import annotations

import os
from pathlib import Path

SWITCH = "AIRSTACK_LOCAL_PODS"
SETTINGS_FOLDER = Path(__file__).resolve().parent / "local_settings"  # holds airflow_local_settings.py
# The folder holding this airstack package: the settings import it, so it is this one, not another install's.
TOOLING_ROOT = Path(__file__).resolve().parents[2]


def enabled(environ=None) -> bool:
    """Whether pod tasks run as local containers here (the local env and the DAG tests set the switch)."""
    return (os.environ if environ is None else environ).get(SWITCH, "") == "docker"


def python_path(*folders: str | os.PathLike[str], environ=None) -> str:
    """``PYTHONPATH`` with ``folders`` first (the local settings', the tooling's), then what the environment had."""
    existing = (os.environ if environ is None else environ).get("PYTHONPATH", "")
    return os.pathsep.join([*map(str, folders), *[p for p in existing.split(os.pathsep) if p]])


def task_policy(task) -> None:
    """Airflow's ``task_policy``: a KubernetesPodOperator task runs its pod locally when the switch is on."""
    if not enabled():
        return
    try:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    except ImportError:  # no Kubernetes provider: no pod task to adopt
        return
    if isinstance(task, KubernetesPodOperator) and not isinstance(getattr(task, "execute", None), LocalPodRun):
        run = LocalPodRun()
        task.execute = run
        task.on_kill = run.kill


class LocalPodRun:
    """A pod task's ``execute`` in the local env. Shared by the copies Airflow makes of the task to run it
    (``prepare_for_execution``), so it takes the task that runs from the context: the one with rendered
    templates."""

    def __init__(self) -> None:
        self.pods = None

    def __call__(self, context):
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from airstack.localenv import pods as local_pods

        task = context["task"]
        if task.do_xcom_push:
            raise AirflowFailException("do_xcom_push is not supported by the local pod runner")
        self.pods = None
        try:
            self.pods = local_pods.DockerPods()
            local_pods.run_pod(task.build_pod_request_obj(context, dry_run=True), task.log,
                               str(getattr(task.on_finish_action, "value", task.on_finish_action)), pods=self.pods)
        except local_pods.PodFailed as exc:  # the container failed: a retry may succeed
            raise AirflowException(str(exc)) from None
        except local_pods.LocalPodError as exc:  # the pod cannot run locally: retrying will not help
            raise AirflowFailException(str(exc)) from None
        except local_pods.AirstackError as exc:  # Docker failed under the task: a retry may succeed
            raise AirflowException(str(exc)) from None
        return None

    def kill(self) -> None:
        """``on_kill``: the task was stopped (timeout, mark-as-failed); its container goes with it."""
        if self.pods is not None:
            self.pods.remove()
