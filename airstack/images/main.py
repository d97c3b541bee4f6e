"""``python -m airstack.images VERB``: the ``build-images``, ``push-images`` and ``images`` sessions."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from airstack import paths
from airstack.cli import run_main
from airstack.errors import AirstackError, ConfigError
from airstack.images import manifest as manifest_mod
from airstack.images.spec import discover, generated_dockerfile, lint_all

console = Console(soft_wrap=True)
LOG_DIR = Path(".airstack") / "logs" / "images"


def registry_for(root: Path, env: str) -> str:
    """``images.registry`` from settings/<env>/deploy.yaml (plaintext deploy configuration)."""
    path = root / "settings" / env / "deploy.yaml"
    if not path.is_file():
        raise ConfigError(f"{path.relative_to(root)}: not found (it says where {env}'s images go: images.registry)")
    data = yaml.safe_load(path.read_text()) or {}
    registry = (data.get("images") or {}).get("registry")
    if not isinstance(registry, str) or not registry:
        raise ConfigError(f"{path.relative_to(root)}: images.registry: missing")
    return registry


def _select(specs, names: list[str]):
    known = {s.name for s in specs}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ConfigError(f"unknown image(s) {', '.join(unknown)}: images/ has {', '.join(sorted(known))}")
    return [s for s in specs if s.name in names] if names else specs


def _builder(root: Path, registry: str, parallel: int):
    from airstack.docker_client import connect
    from airstack.images.builder import Builder

    return Builder(connect(timeout=600), root, root / LOG_DIR, registry=registry, parallel=parallel)


def _table(planned, registry: str) -> Table:
    table = Table(title=f"images{f' (registry {registry})' if registry else ''}", title_justify="left")
    for column in ("name", "flavour", "tag", "built locally", "pushed", "size"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for p in planned:
        pushed = "-" if p.remote is None else ("yes" if p.remote else "no")
        size = f"{p.size / 1e6:.0f} MB" if p.size else "-"
        built = "base unavailable" if p.notes else ("yes" if p.local else "no")
        table.add_row(p.spec.name, p.spec.flavour, p.tag, built, pushed, size)
    return table


def _registry(args, root: Path) -> str:
    if getattr(args, "registry", None):
        return args.registry
    if getattr(args, "env", None):
        return registry_for(root, args.env)
    return ""


def _affected(args, root: Path, specs) -> list:
    """With --changed-since REF, only the images whose context a change since REF touched."""
    if not getattr(args, "changed_since", None):
        return specs
    from airstack.affected import changed_files, images_affected

    names = images_affected(changed_files(root, args.changed_since), specs, root)
    console.print(f"--changed-since {args.changed_since}: {', '.join(names) or 'no image'} affected")
    return [s for s in specs if s.name in names]


def build(args, root: Path, push: bool = False) -> list:
    specs = _affected(args, root, _select(discover(root / "images"), args.names))
    if not specs:
        return []
    registry = _registry(args, root)
    builder = _builder(root, registry, args.parallel)
    skip = getattr(args, "skip_unavailable_base", False)
    planned = builder.plan(specs, tolerate_missing_base=skip)
    for item in [p for p in planned if p.notes]:  # only with --skip-unavailable-base
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
    console.print(_table(planned, registry))
    built = [p.spec.name for p in planned if p.built]
    console.print(f"built {', '.join(built)}" if built else "nothing to build: every image is current")
    return planned


def plan(args, root: Path) -> list:
    """Every image's content tag, and whether it is built locally and pushed (builds nothing)."""
    specs = _select(discover(root / "images"), args.names)
    return _builder(root, _registry(args, root), 1).plan(specs, tolerate_missing_base=True)


def digests(refs: dict[str, str]) -> dict[str, str]:
    """``name -> sha256:...``: the registry digest of each pushed ``registry/name:tag``."""
    from airstack.docker_client import connect
    from airstack.images.builder import registry_digest

    docker = connect(timeout=600)
    return {name: registry_digest(docker, ref) for name, ref in refs.items()}


def promote(copies: dict[str, tuple[str, str]]) -> None:
    """``name -> (registry/name@sha256:..., registry2/name:tag)``: each image copied as it is, never rebuilt."""
    from airstack.docker_client import connect
    from airstack.images.builder import copy_by_digest

    docker = connect(timeout=600)
    for name, (source, target) in sorted(copies.items()):
        copy_by_digest(docker, source, target)
        console.print(f"{name}: {source} -> {target}", highlight=False)


def cmd_list(args, root: Path) -> int:
    planned = plan(args, root)
    registry = _registry(args, root)
    console.print(_table(planned, registry))
    for item in planned:
        for note in item.notes:
            console.print(f"{item.spec.name}: {note}", highlight=False)
    return 0


def cmd_lint(args, root: Path) -> int:
    problems = lint_all(root / "images", root)
    for problem in problems:
        print(problem)
    if not problems:
        console.print(f"images: {len(discover(root / 'images'))} folders, every dependency pinned")
    return 1 if problems else 0


def cmd_dockerfile(args, root: Path) -> int:
    (spec,) = _select(discover(root / "images"), [args.name])[-1:]
    text = generated_dockerfile(spec)
    print(text if text is not None else (spec.folder / "Dockerfile").read_text(), end="")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m airstack.images", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb, help_text in (("build", "build the images whose tag does not exist yet"),
                            ("push", "build if needed, then push to the environment's registry"),
                            ("list", "a table: name, flavour, tag, built locally, pushed, size")):
        p = sub.add_parser(verb, help=help_text)
        p.add_argument("names", nargs="*", help="image folders (default: all)")
        p.add_argument("--env", help="use settings/ENV/deploy.yaml's images.registry")
        p.add_argument("--registry", help="a registry (host[:port][/path]) instead of --env")
        p.add_argument("--parallel", type=int, default=int(os.environ.get("AIRSTACK_BUILD_PARALLEL", "2")))
        p.add_argument("--changed-since", metavar="REF", help="only the images a change since git REF touches")
        p.add_argument("--skip-unavailable-base", action="store_true",
                       help="report and skip an image whose base image this daemon cannot have (else: an error)")
    sub.add_parser("lint", help="every dependency pinned, every folder complete")
    d = sub.add_parser("dockerfile", help="print the Dockerfile an image is built from")
    d.add_argument("name")
    args = parser.parse_args(argv)
    root = paths.repo_root()
    if args.verb == "push" and not (args.env or args.registry):
        raise AirstackError("usage: nox -s push-images -- --env ENV (or --registry HOST[:PORT][/PATH])")
    if args.verb in ("build", "push"):
        build(args, root, push=args.verb == "push")
        return 0
    return {"list": cmd_list, "lint": cmd_lint, "dockerfile": cmd_dockerfile}[args.verb](args, root)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
