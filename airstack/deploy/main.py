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

This module is the command line only: argv becomes one frozen request (:mod:`airstack.deploy.request`), one line
per mistake, and the library runs it (:class:`airstack.deploy.deployer.Deployer`, :mod:`airstack.deploy.destroy`).
"""

from __future__ import annotations

import argparse

from airstack import paths
from airstack.deploy.deployer import Deployer
from airstack.deploy.destroy import destroy
from airstack.deploy.request import DeployRequest, DestroyRequest
from airstack.errors import ConfigError

USAGE = "python -m airstack.deploy {plan,deploy,destroy} ENV [options] (--help: every option)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, our exit path (argparse would print usage and exit 2)
        raise ConfigError(f"{message} (usage: {USAGE})")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m airstack.deploy", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)
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
    destroy.add_argument("--remote", help="with --merged: the remote whose branches count (default: origin)")
    destroy.add_argument("--base", help="with --merged: the branch previews merge into (default: main)")
    destroy.add_argument("--no-fetch", action="store_true", help="with --merged: judge by the refs as they are")
    destroy.add_argument("--dry-run", action="store_true", help="with --merged: list them, remove nothing")
    destroy.add_argument("--yes", action="store_true")
    return p


def _deploy_request(args: argparse.Namespace) -> DeployRequest:
    if args.branch is not None and not args.preview:
        raise ConfigError(f"--branch {args.branch}: only with --preview (the branch whose preview to deploy)")
    if args.dags and args.only:
        raise ConfigError(f"--dags with --only {args.only}: --dags ships the DAG bundle only (no chart, no stack)")
    return DeployRequest(args.env, dry_run=args.dry_run or args.verb == "plan", only=args.only, preview=args.preview,
                         branch=args.branch, yes=args.yes, dags=args.dags,
                         skip_unavailable_base=args.skip_unavailable_base)


def _destroy_request(args: argparse.Namespace) -> DestroyRequest:
    if not args.merged:
        options = (("remote", args.remote), ("base", args.base), ("no-fetch", args.no_fetch), ("dry-run", args.dry_run))
        given = [f"--{name}" for name, value in options if value]
        if given:
            raise ConfigError(f"{', '.join(given)}: only with --merged (which previews to remove)")
    return DestroyRequest(args.env, preview=args.preview, merged=args.merged, remote=args.remote or "origin",
                          base=args.base or "main", fetch=not args.no_fetch, dry_run=args.dry_run, yes=args.yes)


def parse(argv: list[str]) -> DeployRequest | DestroyRequest:
    """The request argv makes (pure): one line per mistake."""
    args = parser().parse_args(argv)
    return _destroy_request(args) if args.verb == "destroy" else _deploy_request(args)


def main(argv: list[str]) -> int:
    request = parse(argv)
    root = paths.repo_root()
    return destroy(root, request) if isinstance(request, DestroyRequest) else Deployer(root, request).run()
