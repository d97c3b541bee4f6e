"""The local pod runner's translation of a pod into a container (pure), and its shell wrapper (real /bin/sh)."""

from __future__ import annotations

import sys

import pytest
from kubernetes.client import models as k8s

from airstack import paths, proc
from airstack.localenv import pod_policy
from airstack.localenv import pods as local_pods

sys.path.insert(0, str(paths.dags_folder()))  # common.kpo: the pods it requests
from common.kpo import project_pod  # noqa: E402

PROJECTS = {"example1": {"config": {"REPORT_CURRENCY": "EUR"}, "secret": {"API_TOKEN": "t0ken"}}}


def _pod(**kwargs):
    task = project_pod(project="example1", task_id="summarise", image="etl-basic", script="transform.py",
                       arguments=["--date", "2024-01-01"], **kwargs)
    return task.build_pod_request_obj(context=None, dry_run=True)


def test_project_pod_becomes_one_container(tmp_path):
    volumes = {"airflow-data": str(tmp_path)}
    c = local_pods.to_container(_pod(), projects=PROJECTS, volumes_map=volumes, network_mode="host",
                                labels={"airstack.local": "x"})
    assert c.image.rsplit("/", 1)[-1].startswith("etl-basic:")
    # kpo.py's bootstrap: the script from the task files the pod carries (AIRSTACK_TASK_FILES).
    assert c.command[:2] == ["python", "-c"] and c.command[3:] == ["transform.py"]
    assert c.environment["AIRSTACK_TASK_FILES"]
    assert c.args == ["--date", "2024-01-01"]
    # The ConfigMap goes into the container's environment; the Secret is kept apart.
    assert c.environment["REPORT_CURRENCY"] == "EUR" and c.environment["DATA_DIR"] == "/data"
    assert "API_TOKEN" not in c.environment and c.secret_environment == {"API_TOKEN": "t0ken"}
    assert {"Type": "tmpfs", "Target": "/opt/airflow/dags"} in c.mounts  # where the bootstrap unpacks them
    assert {"Type": "bind", "Source": str(tmp_path / "example1"), "Target": "/data", "ReadOnly": False} in c.mounts
    assert (tmp_path / "example1").is_dir(), "the project's sub-path is created, like a PVC subPath"
    assert c.user == "1000" and c.mem_limit == 512 * 1024 ** 2
    assert c.labels["airflow-project"] == "example1" and c.labels["airstack.local"] == "x"
    assert c.network_mode == "host"


def test_a_project_without_settings_runs_without_them(tmp_path):
    """Both envFrom sources are optional (seed 004: zero or one ConfigMap and Secret)."""
    c = local_pods.to_container(_pod(), projects={}, volumes_map={"airflow-data": str(tmp_path)})
    assert c.secret_environment == {} and "REPORT_CURRENCY" not in c.environment


@pytest.mark.parametrize(("change", "message"), [
    (lambda pod: pod.spec.volumes[1].persistent_volume_claim.__setattr__("claim_name", "other"),
     "claims 'other', which the local env does not provide"),
    (lambda pod: pod.spec.containers[0].env.append(k8s.V1EnvVar(
        name="X", value_from=k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path="metadata.name")))),
     "env X uses valueFrom"),
    (lambda pod: pod.spec.containers[0].volume_mounts[1].__setattr__("sub_path", "../escape"),
     "subPath '../escape' must be a relative path inside the volume"),
    (lambda pod: pod.spec.containers.append(pod.spec.containers[0]), "locally a pod is one container"),
    (lambda pod: pod.spec.containers[0].env_from[0].config_map_ref.__setattr__("optional", False),
     "envFrom ConfigMap 'example1' is not optional, and settings/local has no projects.example1.config"),
    (lambda pod: pod.spec.volumes.append(k8s.V1Volume(name="cfg", config_map=k8s.V1ConfigMapVolumeSource(
        name="x"))) or pod.spec.containers[0].volume_mounts.append(k8s.V1VolumeMount(name="cfg", mount_path="/c")),
     "volume 'cfg' is neither a PersistentVolumeClaim"),
])
def test_what_has_no_local_meaning_is_refused(change, message, tmp_path):
    pod = _pod()
    change(pod)
    with pytest.raises(local_pods.LocalPodError, match="^pod .*") as exc:
        local_pods.to_container(pod, projects={}, volumes_map={"airflow-data": str(tmp_path)})
    assert message in str(exc.value)


def test_argv_follows_kubernetes_rules():
    image = {"Entrypoint": ["tini", "--"], "Cmd": ["python", "app.py"]}
    plain = local_pods.Container(name="p", image="i", command=None, args=["--x"])
    assert local_pods.argv(plain, image) == (None, ["--x"])  # Docker applies the image's entrypoint itself
    # With secrets the wrapper runs first, so the argv is spelled out with Kubernetes' rules.
    only_args = local_pods.Container(name="p", image="i", command=None, args=["--x"], secret_environment={"S": "1"})
    assert local_pods.argv(only_args, image) == (["/bin/sh", "-c", local_pods.WRAPPER, "airstack-pod"],
                                                 ["tini", "--", "--x"])
    command = local_pods.Container(name="p", image="i", command=["run"], args=None, secret_environment={"S": "1"})
    assert local_pods.argv(command, image)[1] == ["run"]  # command drops the image's CMD
    neither = local_pods.Container(name="p", image="i", command=None, args=None, secret_environment={"S": "1"})
    assert local_pods.argv(neither, image)[1] == ["tini", "--", "python", "app.py"]


HOSTILE = {"QUOTE": "it's \"quoted\"", "SUBST": "$(touch /tmp/pwned) `id` $HOME", "NEWLINES": "a\nb\n\nc",
           "SPACES": "  lead and trail  ", "EMPTY": "", "UNICODE": "pässwörd ✓", "BACKSLASH": "a\\nb\\"}


def test_secret_payload_survives_a_real_shell():
    """The wrapper, as the container runs it, exports every value byte for byte and runs nothing else."""
    result = proc.run(["/bin/sh", "-c", local_pods.WRAPPER, "airstack-pod", sys.executable, "-c",
                       "import json, os; print(json.dumps({k: os.environ.get(k) for k in %r}))" % sorted(HOSTILE)],
                      input=local_pods.secret_payload(HOSTILE), env={"HOME": "/home/x"})
    import json

    assert json.loads(result.stdout) == HOSTILE


def test_no_daemon_is_one_clear_error_quickly(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(local_pods.LocalPodError) as exc:
        local_pods.DockerPods()
    assert "runs as a local Docker container, but no Docker daemon answers at unix:///nonexistent/docker.sock" \
        in str(exc.value)


def test_the_policy_adopts_every_pod_task_only_when_switched_on(monkeypatch):
    """project_pod's tasks and plain KubernetesPodOperators alike; nothing else, and nothing without the switch."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.standard.operators.bash import BashOperator

    def tasks():
        return (project_pod(project="example1", task_id="p", image="etl-basic", script="transform.py"),
                KubernetesPodOperator(task_id="plain", name="plain", image="busybox", cmds=["true"]),
                BashOperator(task_id="bash", bash_command="true"))

    monkeypatch.delenv("AIRSTACK_LOCAL_PODS", raising=False)
    for task in tasks():
        pod_policy.task_policy(task)
        assert not isinstance(task.execute, pod_policy.LocalPodRun), task.task_id  # deployed: untouched
    monkeypatch.setenv("AIRSTACK_LOCAL_PODS", "docker")
    ours, plain, bash = tasks()
    for task in (ours, plain, bash):
        pod_policy.task_policy(task)
    assert isinstance(ours.execute, pod_policy.LocalPodRun) and isinstance(plain.execute, pod_policy.LocalPodRun)
    assert ours.on_kill == ours.execute.kill
    assert bash.execute.__func__ is BashOperator.execute
    run = ours.execute
    pod_policy.task_policy(ours)  # parsed again in the same process: adopted once
    assert ours.execute is run


def test_the_local_run_runs_the_task_it_is_given(monkeypatch):
    """Airflow runs a copy of the task (templates rendered): the run takes that one from the context, and a pod
    that cannot run locally fails without retries, saying why."""
    import copy

    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRSTACK_LOCAL_PODS", "docker")
    task = project_pod(project="example1", task_id="p", image="etl-basic", script="transform.py")
    pod_policy.task_policy(task)
    running = copy.copy(task)
    running.do_xcom_push = True
    with pytest.raises(AirflowFailException, match="^do_xcom_push is not supported by the local pod runner$"):
        task.execute(context={"task": running})
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(AirflowFailException, match="runs as a local Docker container, but no Docker daemon answers"):
        task.execute(context={"task": task})
    task.on_kill()  # no container started: nothing to remove, no error


def test_python_path_puts_the_local_settings_first():
    assert pod_policy.python_path("/s", "/t", environ={"PYTHONPATH": "/a:/b"}) == "/s:/t:/a:/b"
    assert pod_policy.python_path("/s", environ={}) == "/s"
    # The settings import the airstack package they are part of (a checkout's, not another install's).
    assert (pod_policy.TOOLING_ROOT / "airstack" / "localenv" / "pod_policy.py").samefile(pod_policy.__file__)


def test_the_local_env_maps_the_data_claim_only(tmp_path):
    """DAGs reach pods in their task files, not a volume: the old `airflow-dags` claim is mapped nowhere, so a
    pod that still claims it is refused locally as it would fail in the cluster (charts/platform makes none)."""
    import json

    from airstack.localenv.config import LocalConfig

    config = LocalConfig(tmp_path)
    volumes = json.loads(config.pods_env({}, "bridge")["AIRSTACK_LOCAL_VOLUMES"])
    assert volumes == {"airflow-data": str(config.data_dir)}
    pod = _pod()
    pod.spec.volumes[1].persistent_volume_claim.claim_name = "airflow-dags"
    with pytest.raises(local_pods.LocalPodError, match="claims 'airflow-dags', which the local env does not provide"):
        local_pods.to_container(pod, projects={}, volumes_map=volumes)


def test_both_runtimes_put_the_local_settings_where_their_tasks_run(tmp_path, monkeypatch):
    """Native: every service's PYTHONPATH starts with the folder. Docker: the scheduler (which runs the tasks)
    has the airstack package mounted, and its PYTHONPATH names that folder inside the mount."""
    from pathlib import Path, PurePosixPath

    from airstack.localenv import docker_runtime
    from airstack.localenv.config import LocalConfig
    from airstack.localenv.native import NativeRuntime

    monkeypatch.setenv("PYTHONPATH", "/mine")
    config = LocalConfig(tmp_path)
    native = NativeRuntime(config).pods_env({})
    assert native["PYTHONPATH"] == f"{pod_policy.SETTINGS_FOLDER}:{pod_policy.TOOLING_ROOT}:/mine"
    assert native["AIRSTACK_LOCAL_PODS"] == "docker"
    options = docker_runtime.DockerRuntime(config, docker=None)._pod_runner_options()
    inside = PurePosixPath(options["environment"]["PYTHONPATH"].split(":")[0])
    (host, mount), = [(h, m["bind"]) for h, m in options["volumes"].items() if m["bind"].endswith("/airstack")]
    assert mount == f"{docker_runtime.POD_RUNNER_PATH}/airstack" and options["volumes"][host]["mode"] == "ro"
    assert Path(host, inside.relative_to(mount), "airflow_local_settings.py").is_file()
    assert docker_runtime.POD_RUNNER_PATH in options["environment"]["PYTHONPATH"].split(":")  # airstack itself
