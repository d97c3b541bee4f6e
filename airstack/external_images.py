"""Every image the project pulls from outside, in one place.

Each can be replaced through its environment variable, so that a registry mirror or an
image built offline stands in (CI here sets ``AIRSTACK_POSTGRES_IMAGE=local/postgres:15``
and ``AIRSTACK_PYTHON_IMAGE=local/python:3.11-bookworm``).
"""

from __future__ import annotations

import os
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
