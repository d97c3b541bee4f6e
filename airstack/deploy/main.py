"""Deploy an environment as ``settings/<env>/deploy.yaml`` says: images, CloudFormation, then Helm.

``plan ENV`` shows what would change (CloudFormation change sets, then discarded; Helm diffs)
and changes nothing. ``deploy ENV`` builds and pushes changed images (an environment with
``release.promote_from`` instead copies, by digest, the images of that environment's release
record, which must be of this commit: :mod:`airstack.deploy.release`), deploys the stacks in order
(outputs feeding later stacks), then the platform chart and the official chart, settings passed
to Helm on stdin, and writes its own release record. The DAG bundle's deploy ref moves before Helm;
``deploy ENV --dags`` moves only that (:mod:`airstack.deploy.dagdeploy`). ``destroy ENV`` removes an unprotected
environment, one preview environment (``--preview BRANCH``) or the previews of merged or deleted
branches (``--merged``).
"""

from __future__ import annotations

import argparse

from airstack import paths
from airstack.deploy.deployer import cmd_deploy
from airstack.deploy.destroy import cmd_destroy


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m airstack.deploy", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)
    for verb in ("plan", "deploy"):
        d = sub.add_parser(verb, help="show what would change" if verb == "plan" else "deploy an environment")
        d.add_argument("env")
        d.add_argument("--only", choices=["helm", "cloudformation"])
        d.add_argument("--preview", action="store_true", help="integration: this branch's own release/namespace")
        d.add_argument("--branch", help="with --preview: the branch (default: the checked-out one)")
        d.add_argument("--yes", action="store_true", help="apply without asking (CI, after a reviewed plan)")
        d.add_argument("--dry-run", action="store_true", help="plan only: change nothing")
        d.add_argument("--dags", action="store_true",
                       help="DAGs only: move the environment's DAG bundle to this commit (no image, stack or chart)")
        d.add_argument("--skip-unavailable-base", action="store_true",
                       help="leave out images whose base image cannot be had (local replays: conda's base)")
    destroy = sub.add_parser("destroy", help="remove an environment that is not protected (or a preview)")
    destroy.add_argument("env")
    which = destroy.add_mutually_exclusive_group()
    which.add_argument("--preview", metavar="BRANCH", help="remove BRANCH's preview environment only")
    which.add_argument("--merged", action="store_true",
                       help="remove every preview whose branch is merged into --base or gone from --remote")
    destroy.add_argument("--remote", default="origin", help="with --merged: the remote whose branches count")
    destroy.add_argument("--base", default="main", help="with --merged: the branch previews merge into")
    destroy.add_argument("--no-fetch", action="store_true", help="with --merged: judge by the refs as they are")
    destroy.add_argument("--dry-run", action="store_true", help="with --merged: list them, remove nothing")
    destroy.add_argument("--yes", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    root = paths.repo_root()
    if args.verb == "plan":
        args.dry_run = True
    return cmd_destroy(args, root) if args.verb == "destroy" else cmd_deploy(args, root)
