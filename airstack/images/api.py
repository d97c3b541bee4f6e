"""What other code does with images, as typed functions: plan, build (and push), digests, promote.

The ``images`` CLI (:mod:`.main`) and deploys (:mod:`airstack.deploy.main`) both call these; the
registry is an argument (``settings/<env>/deploy.yaml``'s ``images.registry``, read by
:mod:`airstack.settings.deploy_file`, or ``--registry``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from airstack.errors import ConfigError
from airstack.images import manifest as manifest_mod
from airstack.images.spec import ImageSpec, discover

console = Console(soft_wrap=True)
LOG_DIR = Path(".airstack") / "logs" / "images"


def registry_for(root: Path, env: str) -> str:
    """``images.registry`` of settings/<env>/deploy.yaml."""
    from airstack.settings import deploy_file

    return deploy_file.load(root, env).spec.images.registry


def select(root: Path, names: Sequence[str] = ()) -> list[ImageSpec]:
    """The image folders named (all of them when none is)."""
    specs = discover(root / "images")
    known = {s.name for s in specs}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ConfigError(f"unknown image(s) {', '.join(unknown)}: images/ has {', '.join(sorted(known))}")
    return [s for s in specs if s.name in names] if names else specs


def _builder(root: Path, registry: str, parallel: int):
    from airstack.docker_client import connect
    from airstack.images.builder import Builder

    return Builder(connect(timeout=600), root, root / LOG_DIR, registry=registry, parallel=parallel)


def table(planned, registry: str) -> Table:
    """name, flavour, tag, built locally, pushed, size: one row per planned image."""
    shown = Table(title=f"images{f' (registry {registry})' if registry else ''}", title_justify="left")
    for column in ("name", "flavour", "tag", "built locally", "pushed", "size"):
        shown.add_column(column, justify="right" if column == "size" else "left")
    for p in planned:
        pushed = "-" if p.remote is None else ("yes" if p.remote else "no")
        size = f"{p.size / 1e6:.0f} MB" if p.size else "-"
        built = "base unavailable" if p.notes else ("yes" if p.local else "no")
        shown.add_row(p.spec.name, p.spec.flavour, p.tag, built, pushed, size)
    return shown


def build(root: Path, specs: Sequence[ImageSpec], *, registry: str = "", parallel: int = 2, push: bool = False,
          skip_unavailable_base: bool = False) -> list:
    """Build the images whose content tag does not exist yet (and push them to ``registry`` with ``push``);
    record the tags in the manifest. Returns every image's plan."""
    if not specs:
        return []
    builder = _builder(root, registry, parallel)
    planned = builder.plan(specs, tolerate_missing_base=skip_unavailable_base)
    for item in [p for p in planned if p.notes]:  # only with skip_unavailable_base
        console.print(f"{item.spec.name}: skipped: {'; '.join(item.notes)}", highlight=False)
    planned = [p for p in planned if not p.notes]
    todo = [p for p in planned if p.needs_build]
    if todo:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
            tasks = {p.spec.name: bar.add_task(f"{p.spec.name}: waiting", total=None) for p in todo}
            builder.build_all(planned, lambda name, state: bar.update(tasks[name], description=f"{name}: {state}"))
    if push:
        for p in planned:
            builder.push(p)
    tags = {name: item["tag"] for name, item in manifest_mod.read(root)["images"].items()}  # images not asked for
    tags.update({p.spec.name: p.tag for p in planned})
    manifest_mod.write(root, manifest_mod.build_manifest(tags))
    console.print(table(planned, registry))
    built = [p.spec.name for p in planned if p.built]
    console.print(f"built {', '.join(built)}" if built else "nothing to build: every image is current")
    return planned


def plan(root: Path, specs: Sequence[ImageSpec], *, registry: str = "") -> list:
    """Every image's content tag, and whether it is built locally and pushed to ``registry`` (builds nothing)."""
    return _builder(root, registry, 1).plan(specs, tolerate_missing_base=True)


def lookup_digests(refs: dict[str, str]) -> dict[str, str | None]:
    """``name -> sha256:...``, or None where the registry has no such tag; a registry (or daemon) that cannot be
    asked raises :class:`~airstack.errors.DockerError` rather than passing for "absent"."""
    from airstack.docker_client import connect

    docker = connect(timeout=600)
    return {name: docker.registry_digest(ref, strict=True) for name, ref in refs.items()}


def promote(copies: dict[str, tuple[str, str]]) -> None:
    """``name -> (registry/name@sha256:..., registry2/name:tag)``: each image copied as it is, never rebuilt."""
    from airstack.docker_client import connect
    from airstack.images.builder import copy_by_digest

    docker = connect(timeout=600)
    for name, (source, target) in sorted(copies.items()):
        copy_by_digest(docker, source, target)
        console.print(f"{name}: {source} -> {target}", highlight=False)
