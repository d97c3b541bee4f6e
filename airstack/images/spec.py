"""Image folders: ``images/<name>/`` with a flavour, a base image and (optionally) extra context.

Flavours:
- ``conda``: ``environment.yml`` (every package pinned), optionally ``conda-lock.yml``; the
  Dockerfile is generated (micromamba base, the convention for conda in containers);
- ``pip``: ``requirements.txt`` (every requirement pinned with ``==``); the Dockerfile is
  generated (Python base, a venv, installed with uv);
- ``dockerfile``: the folder's own ``Dockerfile`` (the Airflow runtime image).

``image.yaml`` (optional) says ``base`` (a key of airstack.external_images, default by
flavour), ``include`` (repository paths copied into the context, e.g. the Airflow lock and
``dags/`` for the runtime image) and ``description``. A folder's own ``Dockerfile`` always
wins over a generated one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from airstack.config_files import load_model
from airstack.errors import ConfigError

NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
DEFAULT_BASE = {"conda": "micromamba", "pip": "python", "dockerfile": "python"}


class ImageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: str | None = None
    include: dict[str, str] = Field(default_factory=dict, description="context path -> repository path")
    description: str = ""


@dataclass(frozen=True)
class ImageSpec:
    name: str
    folder: Path
    flavour: str  # conda | pip | dockerfile
    base: str  # key in airstack.external_images
    include: dict[str, str] = field(default_factory=dict)
    description: str = ""


def _flavour(folder: Path) -> str | None:
    if (folder / "Dockerfile").is_file() and not (folder / "environment.yml").is_file() \
            and not (folder / "requirements.txt").is_file():
        return "dockerfile"
    if (folder / "environment.yml").is_file():
        return "conda"
    if (folder / "requirements.txt").is_file():
        return "pip"
    return None


def load_spec(folder: Path) -> ImageSpec:
    name = folder.name
    if not NAME.match(name):
        raise ConfigError(f"{folder}: image name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    flavour = _flavour(folder)
    if flavour is None:
        raise ConfigError(f"{folder}: an image folder needs environment.yml (conda), requirements.txt (pip) "
                          "or a Dockerfile")
    options_file = folder / "image.yaml"
    options = load_model(options_file, ImageOptions) if options_file.is_file() else ImageOptions()
    from airstack.external_images import EXTERNAL_IMAGES

    base = options.base or DEFAULT_BASE[flavour]
    if base not in EXTERNAL_IMAGES:
        raise ConfigError(f"{options_file}: base: {base!r} is not one of {', '.join(EXTERNAL_IMAGES)} "
                          "(airstack/external_images.py)")
    return ImageSpec(name, folder, flavour, base, dict(options.include), options.description)


def discover(images_dir: Path) -> list[ImageSpec]:
    """Every image folder, by name."""
    return [load_spec(p) for p in sorted(images_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")]


# ------------------------------------------------------------------------------- pin lint --
_CONDA_PIN = re.compile(r"^[A-Za-z0-9_.\-]+(?:\[[^\]]+\])?\s*(={1,2})\s*[A-Za-z0-9_.*+!\-]+")
_PIP_PIN = re.compile(r"^[A-Za-z0-9_.\-]+(?:\[[^\]]+\])?\s*==\s*[A-Za-z0-9_.+!\-]+")


def lint_conda(path: Path) -> list[str]:
    """Every conda dependency pinned (``name=version`` or ``name==version``), pip sub-lists too."""
    try:
        env = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        return [f"{path}: not valid YAML: {exc}"]
    problems = []
    for index, dep in enumerate(env.get("dependencies") or []):
        if isinstance(dep, dict):
            for j, pip_dep in enumerate(dep.get("pip") or []):
                if not _PIP_PIN.match(str(pip_dep)):
                    problems.append(f"{path}: dependencies[{index}].pip[{j}]: {pip_dep!r} is not pinned "
                                    "(write name==version)")
        elif not _CONDA_PIN.match(str(dep)):
            problems.append(f"{path}: dependencies[{index}]: {dep!r} is not pinned (write name=version, "
                            "e.g. pandas=2.2)")
    if not env.get("dependencies"):
        problems.append(f"{path}: dependencies: empty")
    return problems


def lint_requirements(path: Path) -> list[str]:
    problems = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(("--hash", "\\")):
            continue
        if line.startswith("-"):
            problems.append(f"{path}:{number}: {line!r}: options are not allowed in a worker image's requirements")
        elif not _PIP_PIN.match(line):
            problems.append(f"{path}:{number}: {line!r} is not pinned (write name==version)")
    return problems


def lint_image(spec: ImageSpec, root: Path) -> list[str]:
    problems = []
    if spec.flavour == "conda":
        problems += lint_conda(spec.folder / "environment.yml")
    if spec.flavour == "pip":
        problems += lint_requirements(spec.folder / "requirements.txt")
    for target, source in spec.include.items():
        if not (root / source).exists():
            problems.append(f"{spec.folder}/image.yaml: include: {target}: {source} does not exist")
    if not spec.description and not (spec.folder / "README.md").is_file():
        problems.append(f"{spec.folder}: say what the image is for (README.md, or description: in image.yaml)")
    return problems


def lint_all(images_dir: Path, root: Path) -> list[str]:
    problems: list[str] = []
    try:
        specs = discover(images_dir)
    except ConfigError as exc:
        return str(exc).splitlines()
    for spec in specs:
        problems += lint_image(spec, root)
    return problems


# ------------------------------------------------------------------ generated Dockerfiles --
CONDA_DOCKERFILE = """\
# Generated by airstack (conda flavour): {name}
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
USER root
COPY extra-ca/ /usr/local/share/ca-certificates/extra/
RUN (command -v update-ca-certificates >/dev/null && update-ca-certificates >/dev/null || true)
USER $MAMBA_USER
ENV MAMBA_SSL_VERIFY=/etc/ssl/certs/ca-certificates.crt
COPY --chown=$MAMBA_USER:$MAMBA_USER {env_file} /tmp/{env_file}
RUN micromamba install --yes --name base --file /tmp/{env_file} && micromamba clean --all --yes
ARG MAMBA_DOCKERFILE_ACTIVATE=1
LABEL org.opencontainers.image.title="{name}" io.airstack.flavour="conda"
"""

PIP_DOCKERFILE = """\
# Generated by airstack (pip flavour): {name}
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY extra-ca/ /usr/local/share/ca-certificates/extra/
RUN (command -v update-ca-certificates >/dev/null && update-ca-certificates >/dev/null || true) \\
    && python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --quiet uv=={uv_version}
ENV PATH=/opt/venv/bin:$PATH UV_NATIVE_TLS=1 UV_COMPILE_BYTECODE=1
COPY requirements.txt /tmp/requirements.txt
RUN uv pip install --python /opt/venv/bin/python --no-cache -r /tmp/requirements.txt && rm /tmp/requirements.txt
RUN useradd --uid 1000 --create-home worker
USER 1000
LABEL org.opencontainers.image.title="{name}" io.airstack.flavour="pip"
"""

UV_VERSION = "0.13.8"


def generated_dockerfile(spec: ImageSpec) -> str | None:
    """The Dockerfile the builder writes into the context, or None when the folder has its own."""
    if (spec.folder / "Dockerfile").is_file():
        return None
    if spec.flavour == "conda":
        # micromamba installs a conda-lock file as is: exact builds without a solve.
        env_file = "conda-lock.yml" if (spec.folder / "conda-lock.yml").is_file() else "environment.yml"
        return CONDA_DOCKERFILE.format(name=spec.name, env_file=env_file)
    if spec.flavour == "pip":
        return PIP_DOCKERFILE.format(name=spec.name, uv_version=UV_VERSION)
    raise ConfigError(f"{spec.folder}: Dockerfile missing")
