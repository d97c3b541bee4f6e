"""The only module that imports the Docker SDK (``docker``); everything else asks it.

- :func:`connect` gives a :class:`Docker` that has answered a ping, or raises
  :class:`~airstack.errors.DockerNotAvailableError`; :func:`optional_client` gives None instead,
  :func:`docker_status` a reason.
- :class:`Docker` is what the rest of airstack asks of the daemon: images, builds, pushes,
  containers, volumes and networks, addressed by name or id. Its methods take and return
  plain data (ids, dicts, strings), never SDK objects, so no SDK exception can surface
  anywhere else.
- :func:`translated` turns every SDK error (``docker.errors.*``, and the ``requests``/``urllib3``
  connection errors the SDK lets through) into a :class:`~airstack.errors.DockerError`
  subclass whose message says what failed, on which image or container, and what to do.
  It also wraps a third party's SDK calls (testcontainers).
- :func:`dockerignore_matcher` is the SDK's ``.dockerignore`` semantics (pure Python).
- :func:`get_client` is the raw SDK client, for this module and for tests that inspect the
  daemon directly.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from airstack.errors import (DockerError, DockerNotAvailableError, DockerNotFoundError,
                             DockerRefusedError)

log = logging.getLogger(__name__)
START_DOCKER = "start Docker (here: `docker-offline start`), or set DOCKER_HOST to a daemon that runs"
LIST_HINT = "check the name: `docker images` and `docker ps -a` list what this daemon has"
DAEMON_LOG = "see the daemon's log (`journalctl -u docker`) or `docker info`"


# ------------------------------------------------------------------------- errors --
def _host() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def _detail(exc: BaseException) -> str:
    """The exception's type and the first line of what it says (the daemon's explanation if it gave one)."""
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _sdk_errors() -> tuple:
    """The SDK's error base, requests' and urllib3's (connection lost, timeout), and the socket's."""
    try:
        import requests
        import urllib3
        from docker.errors import DockerException
    except ImportError:
        return (ConnectionError,)
    return DockerException, requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ConnectionError


def translate(exc: BaseException, what: str, hint: str = "") -> DockerError | None:
    """The :class:`DockerError` for an SDK error met while doing ``what`` (None: not the SDK's)."""
    if not isinstance(exc, _sdk_errors()):
        return None
    from docker import errors
    from requests.exceptions import HTTPError, Timeout

    detail, then = _detail(exc), f"; {hint}" if hint else ""
    if isinstance(exc, errors.NotFound):
        return DockerNotFoundError(f"{what}: not found ({detail}){then or '; ' + LIST_HINT}")
    if isinstance(exc, (errors.APIError, HTTPError)):
        return DockerRefusedError(f"{what}: the Docker daemon refused ({detail}){then or '; ' + DAEMON_LOG}")
    if isinstance(exc, Timeout):
        return DockerNotAvailableError(f"{what}: the Docker daemon at {_host()} did not answer in time ({detail}); "
                                       f"check that it is not overloaded ({DAEMON_LOG})")
    if isinstance(exc, errors.DockerException) and "API version" not in str(exc):
        return DockerError(f"{what}: {detail}{then}")
    return DockerNotAvailableError(f"{what}: no Docker daemon answers at {_host()} ({detail}); {START_DOCKER}")


@contextlib.contextmanager
def translated(what: str, hint: str = "") -> Iterator[None]:
    """Run SDK calls; an SDK error becomes the :class:`DockerError` :func:`translate` makes (traceback at debug)."""
    try:
        yield
    except Exception as exc:
        error = translate(exc, what, hint)
        if error is None:
            raise
        log.debug("%s failed", what, exc_info=True)
        raise error from None


# --------------------------------------------------------------------- connecting --
def get_client(timeout: float = 5.0):
    """The raw SDK client, once it has answered a ping, or :class:`DockerNotAvailableError`."""
    try:
        import docker
    except ImportError:
        raise DockerNotAvailableError("the Docker SDK is not installed (pip install docker)") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        if translate(exc, "ping") is None:
            raise
        log.debug("docker ping failed", exc_info=True)
        raise DockerNotAvailableError(f"no Docker daemon answers at {_host()} ({_detail(exc)}); {START_DOCKER}") \
            from None
    return client


def connect(timeout: float = 5.0) -> Docker:
    """The daemon, once it has answered a ping (``timeout``: seconds for each later call too)."""
    return Docker(get_client(timeout))


def optional_client(timeout: float = 5.0) -> Docker | None:
    """The daemon when one answers, else None: for callers to whom Docker is optional."""
    try:
        return connect(timeout)
    except DockerNotAvailableError:
        log.debug("no Docker daemon; going on without it", exc_info=True)
        return None


def docker_status(timeout: float = 3.0) -> tuple[bool, str]:
    """``(True, "")`` when a daemon answers, else ``(False, reason)``."""
    try:
        connect(timeout).close()
    except DockerNotAvailableError as exc:
        return False, str(exc)
    return True, ""


def dockerignore_matcher(patterns: list[str]) -> Callable[[str], bool]:
    """Whether a context-relative path is excluded by ``.dockerignore`` ``patterns`` (the SDK's own rules)."""
    from docker.utils.build import PatternMatcher

    matcher = PatternMatcher(patterns)
    return lambda path: bool(patterns) and matcher.matches(path)


# ---------------------------------------------------------------------- the daemon --
@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    status: str  # created, running, exited...
    started: str  # State.StartedAt as the daemon gives it ("" if never started)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.status == "running"


class Docker:
    """The daemon as airstack uses it: plain data in and out, a :class:`DockerError` on any failure."""

    def __init__(self, client) -> None:
        self.client = client

    def close(self) -> None:
        self.client.close()

    # ----------------------------------------------------------------------- images --
    def inspect_image(self, ref: str) -> dict | None:
        """The image's attributes (``Id``, ``Size``, ``Config``...), or None when the daemon does not have it."""
        from docker.errors import NotFound

        with translated(f"inspecting image {ref}"):
            try:
                return self.client.api.inspect_image(ref)
            except NotFound:
                return None

    def image_exists(self, ref: str) -> bool:
        return self.inspect_image(ref) is not None

    def ensure_image(self, ref: str, hint: str) -> dict:
        """The image's attributes, pulled first if the daemon does not have it; ``hint`` says what to do if neither."""
        attrs = self.inspect_image(ref)
        if attrs is not None:
            return attrs
        with translated(f"image {ref} is not on this Docker daemon, and pulling it failed", hint):
            return self.client.images.pull(ref).attrs

    def registry_digest(self, ref: str, strict: bool = False) -> str | None:
        """``sha256:...`` of ``registry/name:tag``; None if absent (``strict``: only if the registry says so)."""
        from docker.errors import APIError, NotFound

        with translated(f"asking the registry for {ref}", "check that the registry answers and `docker login`"):
            try:
                return self.client.images.get_registry_data(ref).id
            except APIError as exc:  # NotFound, or a registry that answers "unknown manifest" otherwise
                if strict and not isinstance(exc, NotFound):
                    raise
                log.debug("%s is not in its registry", ref, exc_info=True)
                return None

    def build(self, context: bytes, *, tag: str, buildargs: dict, labels: dict, write: Callable[[str], None]) -> str:
        """Build ``context`` (a tar) as ``tag`` (classic builder), writing its output; the build's error, or ""."""
        from docker.errors import APIError

        with translated(f"building {tag}"):
            try:
                for chunk in self.client.api.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag,
                                                   buildargs=buildargs, rm=True, forcerm=True, decode=True,
                                                   labels=labels):
                    write(chunk.get("stream", ""))
                    if "error" in chunk:
                        return chunk["error"].strip()
            except APIError as exc:  # refused before it began (a bad Dockerfile, a build arg...)
                return str(exc.explanation or exc)
        return ""

    def push(self, ref: str, target: str) -> None:
        """Tag image ``ref`` as ``target`` (``registry/name:tag``) and push it."""
        repository, tag = target.rsplit(":", 1)
        with translated(f"pushing {target}", "check that the registry runs and accepts pushes from here"):
            self.client.api.tag(ref, repository, tag)
            self._push(repository, tag)

    def copy(self, source: str, target: str) -> None:
        """Pull ``registry/name@sha256:...``, tag it ``target`` (``registry2/name:tag``) and push it."""
        repository, digest = source.split("@", 1)
        with translated(f"copying {source} to {target}", "push the source image first"):
            image = self.client.images.pull(repository, tag=digest)
        self.push(image.id, target)

    def _push(self, repository: str, tag: str) -> None:
        for chunk in self.client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise DockerRefusedError(f"pushing {repository}:{tag} failed: {chunk['error'].strip()}")

    # ------------------------------------------------------------------- containers --
    def find_container(self, name: str) -> ContainerState | None:
        """The container's state (by name or id), or None when there is no such container."""
        from docker.errors import NotFound

        with translated(f"inspecting container {name}"):
            try:
                attrs = self.client.api.inspect_container(name)
            except NotFound:
                return None
        state = attrs.get("State") or {}
        return ContainerState(attrs["Id"], attrs["Name"].lstrip("/"), state.get("Status", ""),
                              state.get("StartedAt", ""))

    def run_container(self, image: str, *, name: str, **options) -> str:
        """Start a detached container (``options``: the SDK's ``containers.run`` keywords); its id."""
        with translated(f"starting container {name} from {image}"):
            return self.client.containers.run(image, name=name, detach=True, **options).id

    def create_container(self, image: str, *, name: str, mounts: list[dict], host: dict, stdin_once: bool = False,
                         **config) -> str:
        """Create (not start) a container: ``config`` as for the API's create, ``host`` its HostConfig keywords;
        with ``stdin_once`` its stdin is open until the first writer closes it. Its id."""
        api = self.client.api
        with translated(f"creating container {name} from {image}"):
            host_config = api.create_host_config(mounts=[_mount(m) for m in mounts], **host)
            body = api.create_container_config(image, host_config=host_config, stdin_open=stdin_once, **config)
            body["StdinOnce"] = stdin_once
            return api.create_container_from_config(body, name=name)["Id"]

    def start(self, container: str, stdin: bytes | None = None) -> None:
        """Start the container; with ``stdin``, attach first, write it, and close the container's stdin."""
        api = self.client.api
        with translated(f"starting container {container[:12]}"):
            if stdin is None:
                api.start(container)
                return
            sock = api.attach_socket(container, params={"stdin": 1, "stream": 1})
            raw = getattr(sock, "_sock", sock)
            try:
                api.start(container)
                raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)
            finally:
                sock.close()

    def follow_logs(self, container: str) -> Iterator[str]:
        """The container's output, line by line, as it comes, until it exits."""
        with translated(f"reading the log of container {container[:12]}"):
            for chunk in self.client.api.logs(container, stream=True, follow=True):
                yield from chunk.decode(errors="replace").splitlines()

    def logs_tail(self, container: str, lines: int) -> str | None:
        """The last ``lines`` of the container's output; None when there is no such container."""
        from docker.errors import NotFound

        with translated(f"reading the log of container {container}"):
            try:
                return self.client.api.logs(container, tail=lines).decode(errors="replace")
            except NotFound:
                return None

    def wait(self, container: str) -> int:
        """Wait for the container to exit; its exit code."""
        with translated(f"waiting for container {container[:12]}"):
            return int(self.client.api.wait(container)["StatusCode"])

    def stop_container(self, name: str, timeout: float) -> bool:
        """Stop the container if it runs; whether it did."""
        state = self.find_container(name)
        if state is None or not state.running:
            return False
        with translated(f"stopping container {name}"):
            self.client.api.stop(name, timeout=int(timeout))
        return True

    def remove_container(self, name: str) -> None:
        """Remove the container (stopped first, by force) if it exists."""
        from docker.errors import APIError, NotFound

        with translated(f"removing container {name}"):
            try:
                self.client.api.remove_container(name, force=True)
            except NotFound:
                pass
            except APIError as exc:  # someone else removes it right now: it goes all the same
                if "already in progress" not in str(exc.explanation):
                    raise

    def exec_run(self, container: str, argv: list[str]) -> tuple[int, bytes, bytes]:
        """Run ``argv`` in the running container: exit code, stdout, stderr."""
        with translated(f"running {argv[0]} in container {container}"):
            code, (out, err) = self.client.containers.get(container).exec_run(argv, demux=True)
        return code, out or b"", err or b""

    def exec_with_stdin(self, container: str, argv: list[str], stdin: bytes, user: str = "") -> int:
        """Run ``argv`` in the running container with ``stdin`` as its input (memory only); its exit code."""
        api = self.client.api
        with translated(f"running {argv[0]} in container {container}"):
            exec_id = api.exec_create(container, argv, stdin=True, user=user)["Id"]
            sock = api.exec_start(exec_id, socket=True)
            raw = getattr(sock, "_sock", sock)
            try:
                raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)
                while raw.recv(4096):
                    pass
            finally:
                raw.close()
            return _exit_code(api, exec_id)

    def process_count(self, container: str) -> int | None:
        """How many processes run in the container (None: no such container)."""
        if self.find_container(container) is None:
            return None
        with translated(f"listing the processes of container {container}"):
            return len(self.client.api.top(container).get("Processes") or [])

    # ---------------------------------------------------------- labelled resources --
    def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        with translated(f"creating network {name}"):
            if not self.client.networks.list(names=[name]):
                self.client.networks.create(name, labels=labels)

    def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        with translated(f"creating volume {name}"):
            if not self.client.volumes.list(filters={"name": name}):
                self.client.volumes.create(name, labels=labels)

    def remove_containers(self, label: str) -> None:
        """Remove every container labelled ``label`` (``key=value``), running or not."""
        with translated(f"removing the containers labelled {label}"):
            for container in self.client.containers.list(all=True, filters={"label": label}):
                self.remove_container(container.id)

    def remove_labelled(self, label: str) -> None:
        """Remove every container, volume and network labelled ``label`` (``key=value``)."""
        self.remove_containers(label)
        with translated(f"removing the volumes and networks labelled {label}"):
            for volume in self.client.volumes.list(filters={"label": label}):
                volume.remove(force=True)
            for network in self.client.networks.list(filters={"label": label}):
                network.remove()


def _exit_code(api, exec_id: str, tries: int = 50) -> int:
    """An exec's exit code, once the daemon has seen it end (its output closing comes first)."""
    for _ in range(tries):
        result = api.exec_inspect(exec_id)
        if not result["Running"]:
            break
        time.sleep(0.1)
    return result["ExitCode"]


def _mount(spec: dict):
    """A mount as the API spells it (``Type``, ``Source``, ``Target``, ``ReadOnly``), as the SDK wants it."""
    from docker.types import Mount

    return Mount(target=spec["Target"], source=spec.get("Source"), type=spec["Type"],
                 read_only=spec.get("ReadOnly", False))
