"""The only module that talks to the Docker daemon (through the Docker SDK)."""

from __future__ import annotations

import logging
import os

from airstack.errors import DockerNotAvailableError

log = logging.getLogger(__name__)


def get_client(timeout: float = 5.0):
    """A Docker SDK client that has answered a ping, or :class:`DockerNotAvailableError`."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise DockerNotAvailableError("the Docker SDK is not installed (pip install docker)") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        log.debug("docker ping failed", exc_info=True)
        host = os.environ.get("DOCKER_HOST", "the default socket")
        raise DockerNotAvailableError(f"no Docker daemon answers at {host} ({type(exc).__name__})") from None
    return client


def optional_client(timeout: float = 5.0):
    """A client when a daemon answers, else None: for callers to whom Docker is optional (no SDK exceptions
    to import elsewhere)."""
    try:
        return get_client(timeout)
    except DockerNotAvailableError:
        log.debug("no Docker daemon; going on without it", exc_info=True)
        return None


def docker_status(timeout: float = 3.0) -> tuple[bool, str]:
    """``(True, "")`` when a daemon answers, else ``(False, reason)``."""
    try:
        get_client(timeout).close()
    except DockerNotAvailableError as exc:
        return False, str(exc)
    return True, ""


def has_image(client, name: str) -> bool:
    """Whether the daemon of ``client`` holds the image ``name`` (any SDK error: it does not, as far as we know)."""
    from docker.errors import DockerException

    try:
        client.images.get(name)
    except DockerException:
        log.debug("image %s not found", name, exc_info=True)
        return False
    return True
