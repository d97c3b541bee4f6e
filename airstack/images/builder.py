"""Building and pushing images with the Docker SDK (the classic builder: no BuildKit needed).

Each build streams its output to ``.airstack/logs/images/<name>.log``; the console shows a
rich progress display. Images without pending dependencies build in parallel (up to
``parallel``). A failed build raises :class:`ImageBuildError` with the last lines of its log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from airstack.docker_client import Docker
from airstack.errors import AirstackError, DockerError
from airstack.external_images import EXTERNAL_IMAGES, image
from airstack.images.context import Entry, content_tag, extra_ca_from_env, tar_context
from airstack.images.context import context_entries
from airstack.images.spec import ImageSpec

log = logging.getLogger(__name__)
LOG_TAIL = 25


class ImageBuildError(AirstackError):
    pass


@dataclass
class Planned:
    spec: ImageSpec
    entries: list[Entry]
    buildargs: dict[str, str]
    tag: str
    base_ref: str
    local: bool = False  # name:tag exists in the daemon
    remote: bool | None = None  # exists in the registry (None: no registry asked)
    built: bool = False
    log_file: Path | None = None
    size: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.spec.name}:{self.tag}"

    def remote_ref(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{self.ref}"

    @property
    def needs_build(self) -> bool:
        return not self.local and not self.remote


class Builder:
    def __init__(self, docker: Docker, root: Path, log_dir: Path, registry: str = "", parallel: int = 2) -> None:
        self.docker, self.root, self.log_dir = docker, root, log_dir
        self.registry, self.parallel = registry, max(1, parallel)

    # ----------------------------------------------------------------------- inputs --
    def base_id(self, ref: str, key: str) -> str:
        """The base image's id (pulled if the daemon does not have it)."""
        try:
            return self.docker.ensure_image(ref, "")["Id"]
        except DockerError as exc:
            raise ImageBuildError(
                f"base image {ref} is not available ({type(exc).__name__}): set {EXTERNAL_IMAGES[key].env} to an "
                "image this daemon has or can pull (a registry mirror, or an image built offline)") from None

    def plan(self, specs: list[ImageSpec], tolerate_missing_base: bool = False) -> list[Planned]:
        """The content tag of every image, and whether it exists locally (and in the registry).

        With ``tolerate_missing_base`` (the `images` table), an image whose base image is not
        available gets no tag and a note instead of failing the whole plan.
        """
        extra_ca = extra_ca_from_env()
        planned = []
        for spec in specs:
            base_ref = image(spec.base)
            entries = context_entries(spec, self.root, extra_ca)
            buildargs = {"BASE_IMAGE": base_ref}
            hashed_args = {k: v for k, v in buildargs.items() if k != "BASE_IMAGE"}  # the base counts by its id
            try:
                tag = content_tag(entries, hashed_args, self.base_id(base_ref, spec.base))
            except ImageBuildError as exc:
                if not tolerate_missing_base:
                    raise
                planned.append(Planned(spec, entries, buildargs, "-", base_ref, notes=[str(exc)]))
                continue
            item = Planned(spec, entries, buildargs, tag, base_ref)
            item.local, item.size = self._local(item.ref)
            if self.registry:
                item.remote = self._in_registry(item.remote_ref(self.registry))
            planned.append(item)
        return planned

    def _local(self, ref: str) -> tuple[bool, int | None]:
        attrs = self.docker.inspect_image(ref)
        return (True, attrs.get("Size")) if attrs is not None else (False, None)

    def _in_registry(self, ref: str) -> bool:
        return self.docker.registry_digest(ref) is not None

    # ------------------------------------------------------------------------ build --
    def build_all(self, planned: list[Planned],
                  on_event: Callable[[str, str], None] = lambda name, state: None) -> None:
        """Build every image that is missing, up to ``parallel`` at a time; the first failure is raised."""
        todo = [p for p in planned if p.needs_build]
        with ThreadPoolExecutor(self.parallel) as pool:
            errors = [e for e in pool.map(lambda p: self._build_safely(p, on_event), todo) if e]
        if errors:
            raise errors[0]

    def _build_safely(self, item: Planned, on_event) -> ImageBuildError | None:
        try:
            on_event(item.spec.name, "building")
            self.build(item)
            on_event(item.spec.name, "built")
            return None
        except ImageBuildError as exc:
            on_event(item.spec.name, "failed")
            return exc

    def build(self, item: Planned) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        item.log_file = self.log_dir / f"{item.spec.name}.log"
        labels = {"io.airstack.image": item.spec.name, "io.airstack.tag": item.tag,
                  "io.airstack.flavour": item.spec.flavour}
        with item.log_file.open("w") as out:
            error = self.docker.build(tar_context(item.entries), tag=item.ref, buildargs=item.buildargs,
                                      labels=labels, write=out.write)
            if error:
                out.write(f"ERROR: {error}\n")
        if error:
            tail = item.log_file.read_text(errors="replace").splitlines()[-LOG_TAIL:]
            raise ImageBuildError(f"building {item.spec.name} failed: {error}\n  last lines of {item.log_file}:\n"
                                  + "\n".join(f"    {line}" for line in tail))
        item.built, item.local = True, True
        item.size = (self.docker.inspect_image(item.ref) or {}).get("Size")

    # ------------------------------------------------------------------------- push --
    def push(self, item: Planned) -> None:
        if not self.registry:
            raise AirstackError("no registry to push to: give --env ENV (settings/ENV/deploy.yaml) or --registry")
        if item.remote:
            return
        self.docker.push(item.ref, item.remote_ref(self.registry))
        item.remote = True


# ------------------------------------------------------------------ promotion by digest --
def registry_digest(docker: Docker, ref: str) -> str:
    """The registry's digest (``sha256:...``) of ``ref`` (``registry/name:tag``): what exactly was pushed."""
    digest = docker.registry_digest(ref)
    if digest is None:
        raise ImageBuildError(f"{ref} is not in its registry: push it first")
    return digest


def copy_by_digest(docker: Docker, source: str, target: str) -> None:
    """Pull ``source`` (``registry/name@sha256:...``), tag it ``target`` (``registry2/name:tag``), push it."""
    try:
        docker.copy(source, target)
    except DockerError as exc:
        raise ImageBuildError(str(exc)) from None
