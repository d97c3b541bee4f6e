"""KubernetesPodOperator tasks as local Docker containers (the local env; no cluster, no minikube).

The local env (``nox -s up``) and the KPO DAG tests set ``AIRSTACK_LOCAL_PODS=docker``; a pod
task from ``common.kpo.project_pod`` (dags/) then imports this module and runs the pod it would
have requested as one container of the same image, through :mod:`airstack.docker_client`:

- the container's command, arguments, working directory and ``env`` values;
- ``envFrom`` a ConfigMap / Secret: the project's ``config`` / ``secret`` from settings/local
  (``AIRSTACK_LOCAL_PROJECTS_FILE``, a JSON file in memory-backed storage, or the
  ``AIRSTACK_LOCAL_PROJECTS`` variable). Secret values never enter the container's
  configuration (which dockerd stores on disk): they are written to the container's stdin
  and exported by a ``/bin/sh`` wrapper before the command starts;
- volumes: a PersistentVolumeClaim is the host folder ``AIRSTACK_LOCAL_VOLUMES`` maps its
  claim name to (``subPath`` and ``readOnly`` honoured), ``emptyDir`` a tmpfs, ``hostPath`` itself;
- ``runAsUser``/``runAsGroup``, memory and CPU limits;
- the network ``AIRSTACK_LOCAL_POD_NETWORK`` names (``host`` for the native env, the env's
  network namespace for the docker env), labels ``AIRSTACK_LOCAL_POD_LABELS``.

Logs stream into the task log as they come; the exit code decides the task's state. What
has no local meaning (init containers, sidecars, volumes of other kinds, ``valueFrom``)
fails the task with a message saying so, before anything starts.

It is development tooling, so it lives here and not in ``dags/common`` (which every DAG bundle
and runtime image ships). Where tasks run: the native env and the DAG tests run them in the
tooling's own environment, where ``airstack`` is installed; the docker env mounts this
``airstack`` package read-only into its scheduler container (see ``docker_runtime``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from airstack.docker_client import Docker, connect
from airstack.errors import AirstackError, DockerNotAvailableError

WRAPPER = 'set -a; . /dev/stdin; set +a; exec "$@"'
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LocalPodError(AirstackError):
    """A pod that cannot run locally, or a local container that failed; the message says which and why."""


class PodFailed(LocalPodError):
    """The container ran and exited non-zero (a retry may help, unlike the other errors)."""


@dataclass
class Container:
    """What the Docker daemon is asked to run (secrets kept apart from the configuration)."""

    name: str
    image: str
    command: list[str] | None
    args: list[str] | None
    environment: dict[str, str] = field(default_factory=dict)
    secret_environment: dict[str, str] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    working_dir: str | None = None
    user: str | None = None
    mem_limit: int | None = None
    nano_cpus: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    network_mode: str = "bridge"


def _json_env(name: str) -> Any:
    raw = os.environ.get(name)
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LocalPodError(f"{name} is not valid JSON: {exc.msg}") from None


def local_projects() -> dict[str, dict[str, dict[str, str]]]:
    """``{project: {"config": {...}, "secret": {...}}}`` as the local env handed them over."""
    path = os.environ.get("AIRSTACK_LOCAL_PROJECTS_FILE")
    if path:
        try:
            return json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LocalPodError(f"AIRSTACK_LOCAL_PROJECTS_FILE {path}: cannot read it ({exc})") from None
    return _json_env("AIRSTACK_LOCAL_PROJECTS")


def _quantity(value: Any) -> float:
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(value))


def _env_from(sources, projects: dict, where: str) -> tuple[dict[str, str], dict[str, str]]:
    config: dict[str, str] = {}
    secret: dict[str, str] = {}
    for source in sources or []:
        for ref, kind, into in ((source.config_map_ref, "config", config), (source.secret_ref, "secret", secret)):
            if ref is None:
                continue
            values = (projects.get(ref.name) or {}).get(kind)
            if values is None and not ref.optional:
                raise LocalPodError(f"{where}: envFrom {'ConfigMap' if kind == 'config' else 'Secret'} {ref.name!r} "
                                    f"is not optional, and settings/local has no projects.{ref.name}.{kind}")
            into.update({(source.prefix or "") + k: v for k, v in (values or {}).items()})
    return config, secret


def _mount(volume, mount, volumes_map: dict[str, str], where: str) -> dict[str, Any]:
    target = mount.mount_path
    read_only = bool(mount.read_only)
    if volume.empty_dir is not None:
        return {"Type": "tmpfs", "Target": target}
    if volume.host_path is not None:
        source = volume.host_path.path
    elif volume.persistent_volume_claim is not None:
        claim = volume.persistent_volume_claim.claim_name
        if claim not in volumes_map:
            raise LocalPodError(f"{where}: volume {volume.name!r} claims {claim!r}, which the local env does not "
                                f"provide (it maps {', '.join(sorted(volumes_map)) or 'no claims'})")
        source = volumes_map[claim]
        read_only = read_only or bool(volume.persistent_volume_claim.read_only)
    else:
        raise LocalPodError(f"{where}: volume {volume.name!r} is neither a PersistentVolumeClaim, an emptyDir "
                            "nor a hostPath; it has no local equivalent")
    if mount.sub_path:
        sub = PurePosixPath(mount.sub_path)
        if sub.is_absolute() or ".." in sub.parts:
            raise LocalPodError(f"{where}: subPath {mount.sub_path!r} must be a relative path inside the volume")
        source = str(Path(source) / sub)
        if not read_only:
            _writable_folder(Path(source))
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only}


def _writable_folder(path: Path) -> None:
    """A project's data folder, writable by the pod's (non-root) user as a PVC would be."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        path.chmod(0o1777)
    except PermissionError:
        pass  # not ours: whoever made it decided


def to_container(pod, *, projects: dict, volumes_map: dict[str, str], network_mode: str = "bridge",
                 labels: dict[str, str] | None = None) -> Container:
    """Translate the pod a KubernetesPodOperator requests (a ``V1Pod``) into one container."""
    spec = pod.spec
    where = f"pod {pod.metadata.name}"
    if spec.init_containers or len(spec.containers) != 1:
        raise LocalPodError(f"{where}: locally a pod is one container; this one has "
                            f"{len(spec.containers)} containers and {len(spec.init_containers or [])} init containers")
    c = spec.containers[0]
    env: dict[str, str] = {}
    for var in c.env or []:
        if var.value_from is not None:
            raise LocalPodError(f"{where}: env {var.name} uses valueFrom, which has no local equivalent; "
                                "put the value in settings/local under projects.<project>.config or .secret")
        env[var.name] = var.value or ""
    config, secret = _env_from(c.env_from, projects, where)
    bad = sorted(k for k in [*config, *secret] if not _ENV_NAME.match(k))
    if bad:
        raise LocalPodError(f"{where}: {', '.join(bad)} are not environment variable names")
    volumes = {v.name: v for v in spec.volumes or []}
    mounts = []
    for mount in c.volume_mounts or []:
        if mount.name not in volumes:
            raise LocalPodError(f"{where}: volumeMount {mount.name!r} names no volume of the pod")
        mounts.append(_mount(volumes[mount.name], mount, volumes_map, where))
    security = c.security_context or spec.security_context
    user = None
    if security is not None and security.run_as_user is not None:
        user = str(security.run_as_user)
        if security.run_as_group is not None:
            user += f":{security.run_as_group}"
    limits = (c.resources.limits if c.resources else None) or {}
    return Container(
        name=pod.metadata.name, image=c.image, command=c.command, args=c.args,
        environment={**config, **env}, secret_environment=secret, mounts=mounts, working_dir=c.working_dir,
        user=user, mem_limit=int(_quantity(limits["memory"])) if "memory" in limits else None,
        nano_cpus=int(_quantity(limits["cpu"]) * 1e9) if "cpu" in limits else None,
        labels={**(pod.metadata.labels or {}), **(labels or {})}, network_mode=network_mode,
    )


def secret_payload(values: dict[str, str]) -> bytes:
    """``export NAME='value'`` lines for the wrapper to source from stdin (quoted for /bin/sh)."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(values.items())).encode()


def argv(container: Container, image_config: dict) -> tuple[list[str] | None, list[str] | None]:
    """(entrypoint, cmd) for Docker, with Kubernetes' rules and, when there are secrets, the wrapper.

    Kubernetes: ``command`` replaces the image's ENTRYPOINT (and drops its CMD); ``args``
    replace CMD. The wrapper needs the resulting argv spelled out, so the image's are read.
    """
    if not container.secret_environment:
        return container.command, container.args
    entrypoint = container.command if container.command is not None else (image_config.get("Entrypoint") or [])
    if container.args is not None:
        cmd = container.args
    else:
        cmd = [] if container.command is not None else (image_config.get("Cmd") or [])
    full = [*entrypoint, *cmd]
    if not full:
        raise LocalPodError(f"pod {container.name}: neither the pod nor image {container.image} says what to run")
    return ["/bin/sh", "-c", WRAPPER, "airstack-pod"], full


class DockerPods:
    """Runs :class:`Container` s on the Docker daemon (through :mod:`airstack.docker_client`)."""

    def __init__(self, docker: Docker | None = None) -> None:
        self.docker = docker or self._connect()
        self.container_id: str | None = None

    @staticmethod
    def _connect() -> Docker:
        try:
            return connect(timeout=10)
        except DockerNotAvailableError as exc:
            raise LocalPodError(f"this KubernetesPodOperator task runs as a local Docker container, but {exc}; "
                                "then clear the task") from None

    def image_config(self, image: str) -> dict:
        attrs = self.docker.inspect_image(image)
        if attrs is None:
            name = image.rsplit("/", 1)[-1].split(":", 1)[0]
            raise LocalPodError(f"image {image} is not on this Docker daemon: build it with "
                                f"`nox -s build-images -- {name}`, then clear the task")
        return attrs.get("Config") or {}

    def run(self, container: Container, log) -> int:
        """Create, feed secrets, start, stream logs, wait; return the exit code."""
        entrypoint, cmd = argv(container, self.image_config(container.image))
        secrets = container.secret_environment
        self.container_id = self.docker.create_container(
            container.image, name=_container_name(container.name), mounts=container.mounts,
            host={"network_mode": container.network_mode, "mem_limit": container.mem_limit,
                  "nano_cpus": container.nano_cpus},
            # stdin closes when the writer does, so the wrapper reads the secrets to their end
            stdin_once=bool(secrets), command=cmd, entrypoint=entrypoint, environment=container.environment,
            working_dir=container.working_dir, user=container.user or "", labels=container.labels)
        self.docker.start(self.container_id, secret_payload(secrets) if secrets else None)
        for line in self.docker.follow_logs(self.container_id):
            log.info("%s", line)
        return self.docker.wait(self.container_id)

    def remove(self) -> None:
        if self.container_id is not None:
            self.docker.remove_container(self.container_id)
            self.container_id = None


def _container_name(pod_name: str) -> str:
    """A unique, valid container name derived from the pod's."""
    base = re.sub(r"[^a-zA-Z0-9_.-]", "-", pod_name)[:80]
    return f"airstack-pod-{base}-{os.urandom(3).hex()}"


def run_pod(pod, log, on_finish_action: str = "delete_pod", pods: DockerPods | None = None) -> None:
    """Run ``pod`` locally; raise :class:`LocalPodError` unless its container exits 0."""
    container = to_container(
        pod, projects=local_projects(), volumes_map=_json_env("AIRSTACK_LOCAL_VOLUMES"),
        network_mode=os.environ.get("AIRSTACK_LOCAL_POD_NETWORK", "bridge"),
        labels=_json_env("AIRSTACK_LOCAL_POD_LABELS"))
    pods = pods or DockerPods()
    log.info("running pod %s locally as a Docker container of %s", container.name, container.image)
    succeeded = False
    try:
        code = pods.run(container, log)
        succeeded = code == 0
        if not succeeded:
            raise PodFailed(f"pod {container.name}: its container exited with code {code} (log above)")
    finally:
        if on_finish_action == "delete_pod" or (succeeded and on_finish_action == "delete_succeeded_pod"):
            pods.remove()
        elif pods.container_id:
            log.info("kept the container %s for inspection (on_finish_action=%s)", pods.container_id[:12],
                     on_finish_action)
