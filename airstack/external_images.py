"""Every image the project pulls from outside, in one place.

Each can be replaced through its environment variable, so that a registry mirror or an
image built offline stands in (CI here sets ``AIRSTACK_POSTGRES_IMAGE=local/postgres:15``
and ``AIRSTACK_PYTHON_IMAGE=local/python:3.11-bookworm``).

:func:`unobtainable` tells whether a Docker daemon that answers can have one: a daemon behind a
proxy, or without registry access, answers but cannot pull. The test Postgres and ``up`` ask it
before they choose Docker, and fall back (embedded Postgres, the native runtime) when it cannot.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ExternalImage:
    key: str
    default: str
    env: str
    purpose: str

    def resolve(self, environ: dict[str, str] | None = None) -> str:
        environ = os.environ if environ is None else environ
        return environ.get(self.env) or self.default


EXTERNAL_IMAGES: dict[str, ExternalImage] = {
    image.key: image
    for image in (
        ExternalImage("postgres", "postgres:15", "AIRSTACK_POSTGRES_IMAGE",
                      "the metadata database for tests (testcontainers) and the Docker local env"),
        ExternalImage("python", "python:3.11-slim-bookworm", "AIRSTACK_PYTHON_IMAGE",
                      "base of the Airflow runtime image and the pip worker images"),
        ExternalImage("micromamba", "mambaorg/micromamba:2.0.5", "AIRSTACK_MICROMAMBA_IMAGE",
                      "base of the conda worker images"),
    )
}


def image(key: str, environ: dict[str, str] | None = None) -> str:
    """The image reference to use for ``key`` (``postgres``, ``python``, ``micromamba``)."""
    return EXTERNAL_IMAGES[key].resolve(environ)


PULL_WAIT = 10.0  # seconds one pull attempt may take before the image counts as not to be had (a proxy that hangs)


def unobtainable(key: str, environ: dict[str, str] | None = None, wait: float = PULL_WAIT) -> str:
    """Why the Docker daemon cannot have image ``key`` (``""``: it has it, or pulled it within ``wait`` s).

    One attempt: the image on the daemon, else one pull. A pull still going after ``wait`` seconds
    goes on in the background (a later run finds the image) while the caller goes on without it.
    """
    from airstack.docker_client import connect
    from airstack.errors import DockerError

    ref, variable = image(key, environ), EXTERNAL_IMAGES[key].env
    problem: list[str] = []

    def attempt() -> None:
        try:
            connect().ensure_image(ref, f"set {variable} to a mirror or a local image to use Docker")
        except DockerError as exc:
            problem.append(str(exc))

    puller = threading.Thread(target=attempt, name=f"pull-{key}", daemon=True)  # never holds up the exit
    puller.start()
    puller.join(wait)
    if puller.is_alive():
        return (f"image {ref} is not on this Docker daemon, and pulling it did not finish in {wait:g} s; "
                f"set {variable} to a mirror or a local image to use Docker")
    return problem[0] if problem else ""
