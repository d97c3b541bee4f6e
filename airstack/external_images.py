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


@dataclass(frozen=True)
class Unobtainable:
    """An image the Docker daemon cannot have: not on it, and one pull attempt failed (``why``) or hung."""

    ref: str
    env: str
    why: str  # how the pull attempt ended: "failed: <the daemon's answer>", or "did not finish in 10 s"

    def __str__(self) -> str:
        return describe([self])


def describe(missing: list[Unobtainable]) -> str:
    """One line: which images, why, and which variables make Docker usable after all."""
    refs, envs = " and ".join(m.ref for m in missing), " and ".join(m.env for m in missing)
    whys = "; ".join(dict.fromkeys(m.why for m in missing))  # the same answer once
    if len(missing) == 1:
        return (f"image {refs} is not on this Docker daemon, and pulling it {whys}; set {envs} to a mirror or a "
                "local image to use Docker")
    return (f"images {refs} are not on this Docker daemon, and pulling them {whys}; set {envs} to a mirror or "
            "local images to use Docker")


def unobtainable(key: str, environ: dict[str, str] | None = None, wait: float = PULL_WAIT) -> Unobtainable | None:
    """Why the Docker daemon cannot have image ``key`` (None: it has it, or pulled it within ``wait`` s).

    One attempt: the image on the daemon, else one pull. A pull still going after ``wait`` seconds
    goes on in the background (a later run finds the image) while the caller goes on without it.
    """
    from airstack.docker_client import connect
    from airstack.errors import DockerError

    ref, variable = image(key, environ), EXTERNAL_IMAGES[key].env
    failed: list[str] = []

    def attempt() -> None:
        try:
            connect().ensure_image(ref, "-")
        except DockerError as exc:  # "image REF is not on this Docker daemon, and pulling it failed: WHY; -"
            text = str(exc).removesuffix("; -")
            failed.append(text.split(", and pulling it ", 1)[1] if ", and pulling it " in text else f"failed: {text}")

    puller = threading.Thread(target=attempt, name=f"pull-{key}", daemon=True)  # never holds up the exit
    puller.start()
    puller.join(wait)
    if puller.is_alive():
        return Unobtainable(ref, variable, f"did not finish in {wait:g} s")
    return Unobtainable(ref, variable, failed[0]) if failed else None
