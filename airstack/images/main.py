"""``python -m airstack.images VERB``: the ``build-images``, ``push-images`` and ``images`` sessions."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from airstack import paths
from airstack.cli import run_main
from airstack.errors import AirstackError
from airstack.images import api
from airstack.images.api import console
from airstack.images.spec import discover, generated_dockerfile, lint_all


def _registry(args, root: Path) -> str:
    if getattr(args, "registry", None):
        return args.registry
    if getattr(args, "env", None):
        return api.registry_for(root, args.env)
    return ""


def _affected(args, root: Path, specs) -> list:
    """With --changed-since REF, only the images whose context a change since REF touched."""
    if not getattr(args, "changed_since", None):
        return specs
    from airstack.gate.affected import changed_files, images_affected

    names = images_affected(changed_files(root, args.changed_since), specs, root)
    console.print(f"--changed-since {args.changed_since}: {', '.join(names) or 'no image'} affected")
    return [s for s in specs if s.name in names]


def cmd_build(args, root: Path) -> int:
    specs = _affected(args, root, api.select(root, args.names))
    if specs:
        api.build(root, specs, registry=_registry(args, root), parallel=args.parallel, push=args.verb == "push",
                  skip_unavailable_base=args.skip_unavailable_base)
    return 0


def cmd_list(args, root: Path) -> int:
    registry = _registry(args, root)
    planned = api.plan(root, api.select(root, args.names), registry=registry)
    console.print(api.table(planned, registry))
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
    (spec,) = api.select(root, [args.name])[-1:]
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
    verbs = {"build": cmd_build, "push": cmd_build, "list": cmd_list, "lint": cmd_lint, "dockerfile": cmd_dockerfile}
    return verbs[args.verb](args, root)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
