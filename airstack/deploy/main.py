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
from collections.abc import Callable
from pathlib import Path

import yaml
from rich.console import Console

from airstack import cli, paths, verdict
from airstack.deploy import config, guards, ingress, preflight, preview_access
from airstack.deploy import auth_policy, chart_values, target
from airstack.deploy.guards import GuardError
from airstack.deploy.shipping import Images, Promotion, copy_promoted, images, plan_promotion, write_record
from airstack.errors import AirstackError, ConfigError

console = Console(highlight=False)


def _branch(root: Path) -> str:
    branch = guards.current_branch(root)
    if branch in ("", "HEAD"):
        raise ConfigError("--preview needs a branch: check one out, or give --branch NAME")
    return branch


def _confirm(args, protected: bool) -> Callable[[str], bool]:
    """Asks before each change of a protected environment, or before what cannot be undone (``protected``)."""
    return lambda what: cli.confirm(f"apply {what}?", yes=args.yes, protected=protected,
                                    hint=guards.NOT_INTERACTIVE_HINT)


def run_guards(root: Path, env: config.Environment, args) -> None:
    """A protected environment's guards, all of them, before anything changes."""
    if not env.spec.protected:
        return
    problems = [p for p in (guards.clean_tree(root), guards.release_ref(root),
                            guards.settings_encrypted(root, env.name),
                            None if args.dry_run else guards.interactive(args.yes)) if p]
    if problems:
        raise GuardError("\n".join(f"{env.name} is protected: {p}" for p in problems))


def check_settings(root: Path, env: config.Environment) -> None:
    """deploy.yaml's connection ids and the Celery broker URL exist in secret.yaml (read without its key)."""
    path = root / "settings" / env.name / "secret.yaml"
    rel = path.relative_to(root).as_posix()
    try:
        secret = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{rel}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    problems = config.settings_problems(env, rel, secret or {})
    if problems:
        raise ConfigError("\n".join(problems))
    airflow = (secret or {}).get("airflow") or {}
    if not airflow.get("users"):
        oidc = (airflow.get("auth") or {}).get("oidc")
        what = f"so {env.name} has no break-glass login when the IdP is down" if oidc else \
            f"so nobody can log in to {env.name}"
        console.print(f"[yellow]warning[/]: {rel}: airflow.users: none, {what} "
                      "(FabAuthManager): add users with `nox -s settings-edit`")
    for line in ingress.problems(env.file, env.spec.airflow.ingress, bool((airflow.get("auth") or {}).get("oidc"))):
        console.print(f"[yellow]warning[/]: {line}")


def check_auth(root: Path, env: config.Environment) -> None:
    """The official chart's auth manager, as the environment's values files set it: never SimpleAuthManager."""
    files = []
    for name in env.spec.helm.airflow.values:
        try:
            files.append((name, yaml.safe_load((root / name).read_text()) or {}))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    problems = auth_policy.auth_problems(files)
    if problems:
        raise ConfigError("\n".join(f"{env.file}: helm.airflow.values: {p}" for p in problems))


def cloudformation(root: Path, env: config.Environment, args, confirm) -> dict:
    from airstack.deploy import aws
    from airstack.deploy import cloudformation as cfn

    cf_spec = env.spec.cloudformation
    if cf_spec is None or args.only == "helm" or args.preview:
        return {}
    console.rule(f"CloudFormation ({cf_spec.region}, {len(cf_spec.stacks)} stacks)")
    specs = cfn.load_stacks(root, cf_spec.stacks, root / cf_spec.parameters, cf_spec.stack_prefix)
    client = aws.client_factory(cf_spec.region)("cloudformation")
    return cfn.deploy(client, specs, confirm=lambda spec, _plan: confirm(f"the change set of {spec.stack_name}"),
                      dry_run=args.dry_run, console=console)


def helm_releases(root: Path, env: config.Environment, args, imgs: Images | None, confirm,
                  promotion: Promotion | None = None) -> tuple[str, dict[str, str]]:
    """The DAG bundle's ref, then plan and upgrade both releases; returns the settings digest and the DAG
    bundle entry (for the release record)."""
    from airstack.deploy import dagdeploy, preview_db
    from airstack.deploy.helm_binary import HelmBinary, process_timeout
    from airstack.settings import store

    spec = env.spec.helm
    if spec is None or imgs is None:
        return "", {}
    tgt = target.target(spec, config.preview_name(args.branch or _branch(root)) if args.preview else None)
    settings = store.load(root, env.name)  # decrypted in memory only
    if tgt.preview:  # its own metadata database, never integration's: made before anything of the preview changes
        settings = preview_db.provision(settings, tgt.namespace, f"settings/{env.name}/secret.yaml", args.dry_run)
    console.rule(f"DAG bundle ({env.spec.airflow.dag_bundle.kind})")
    bundle_values, dags = dagdeploy.full_deploy(root, env, tgt, promotion.source if promotion else None,
                                                args.dry_run)
    console.rule(f"Helm (context {spec.kube_context}, namespace {tgt.namespace})")
    runtime = imgs.pinned("airflow")  # registry/airflow:tag@sha256:...: every image by digest
    options = env.spec.airflow
    platform_values = chart_values.platform_values(settings, tgt, runtime, options)
    workers = {k: imgs.pinned(k) for k in imgs.refs if k != "airflow"}
    airflow_values = chart_values.airflow_values(tgt, runtime, workers, chart_values.settings_digest(platform_values),
                                                 options, (root / chart_values.USERS_SCRIPT).read_text(), bundle_values)
    airflow_values = chart_values.with_oidc(airflow_values, tgt.airflow_release, settings.airflow.auth.oidc,
                                            (root / chart_values.OIDC_CONFIG).read_text())
    cli = HelmBinary(process_timeout(spec.timeout))  # never killed while Helm waits (a long migration)
    if tgt.preview:
        preview_access.grant(env, tgt, args.dry_run)
    for release, name, values in ((spec.platform, tgt.platform_release, platform_values),
                                  (spec.airflow, tgt.airflow_release, airflow_values)):
        changed, text = cli.diff(release, name, tgt.namespace, spec.kube_context, values)
        console.print(text if changed else f"{name}: no changes")
        if args.dry_run or not changed:
            continue
        if not confirm(f"the {name} release"):
            raise AirstackError(f"declined: {name} not upgraded")
        cli.upgrade(release, name, tgt.namespace, spec.kube_context, spec.timeout, values)
        console.print(f"[green]{name}[/]: upgraded")
    return chart_values.settings_digest(platform_values), dags


def _ship(root: Path, env: config.Environment, checks: preflight.Checks, preview: bool,
          skip_unavailable_base: bool) -> tuple[Images | None, Promotion | None]:
    """The images the charts run, each resolved to its digest, and (promoting) the source's record: checked before
    any change."""
    promotes = env.spec.release is not None and env.spec.release.promote_from is not None
    if promotes and not preview:  # ship the source's record: its images, copied by digest
        promotion = plan_promotion(root, env, checks)
        return (promotion.images if promotion else None), promotion
    imgs = images(root, env, checks.dry_run, skip_unavailable_base, checks)
    if env.spec.protected and imgs.unpushed and not checks.dry_run:
        raise GuardError(f"{env.name} is protected: {guards.images_pushed(imgs.unpushed, imgs.registry)}")
    return imgs, None


def cmd_deploy(args, root: Path) -> int:
    env = config.load(root, args.env)
    if args.preview and not env.spec.preview:
        raise ConfigError(f"{env.file}: preview: environment {env.name} has no preview environments")
    charts = env.spec.helm is not None and args.only != "cloudformation" and not args.dags
    if charts:
        check_settings(root, env)
        check_auth(root, env)
    run_guards(root, env, args)
    if args.dags:  # the DAG bundle only: no image, no stack, no chart (airstack/deploy/dagdeploy.py)
        from airstack.deploy import dagdeploy

        return dagdeploy.cmd_dags(args, root, env, _confirm(args, env.spec.protected))
    checks = preflight.Checks(env.name, args.dry_run)
    imgs, promotion = _ship(root, env, checks, bool(args.preview), args.skip_unavailable_base) if charts \
        else (None, None)  # every check before any change
    if imgs is not None and imgs.unpinned() and not args.dry_run:  # never Helm with a tag alone
        raise GuardError(f"{env.name}: no registry digest for {', '.join(imgs.unpinned())}: nothing was changed")
    confirm = _confirm(args, env.spec.protected)
    outputs = cloudformation(root, env, args, confirm)
    problems = config.stack_problems(env, outputs) if charts else []
    if problems:  # the pods' role could not reach the buckets deploy.yaml names: stop before Helm
        raise ConfigError("\n".join(problems))
    if promotion is not None and promotion.copies and not args.dry_run:
        copy_promoted(promotion)  # after the stacks (the registries), before the charts
    from airstack.deploy import migration_timeout, snapshot

    snap = snapshot.before_helm(root, env, args) if charts else None  # may the charts migrate? snapshot first
    with migration_timeout.reported(env, snap):  # a migration past Helm's timeout is reported as such
        digest, dags = helm_releases(root, env, args, imgs, confirm, promotion)
    if charts and env.spec.release is not None and not (args.dry_run or args.preview):
        write_record(root, env, imgs, digest, promotion, dags, snap.id if snap else "")
    counted = checks.tally.ran or checks.tally.not_run
    if counted:
        console.print(checks.summary())
    console.print(f"[green]{env.name}[/]: {'planned (nothing changed)' if args.dry_run else 'deployed'}")
    return verdict.exit_code(checks.word()) if counted else 0


def _teardown(root: Path, env: config.Environment, cli, namespaces: list[str], dry_run: bool = False) -> int:
    """Every part of each preview (airstack/deploy/teardown.py), one line each; an error if any part failed."""
    from airstack.deploy import teardown
    from airstack.deploy.kubectl_binary import KubectlBinary

    failed = teardown.remove(teardown.Context(root, env, cli, KubectlBinary()), namespaces, dry_run)
    if failed:
        raise AirstackError(f"{failed} part(s) not removed (the lines above say why): run the destroy again")
    return 0


def destroy_merged(args, root: Path, env: config.Environment) -> int:
    """Every preview whose branch is merged into the base branch or gone from the remote."""
    from airstack.deploy import previews
    from airstack.deploy.helm_binary import HelmBinary
    from airstack.deploy.teardown import ref_namespaces

    spec = env.spec.helm
    if not env.spec.preview or spec is None:
        raise ConfigError(f"{env.file}: preview: environment {env.name} has no preview environments")
    branches = previews.remote_branches(root, args.remote, args.base, fetch=not args.no_fetch)
    cli = HelmBinary()
    releases = [previews.Release(name, namespace) for name, namespace in cli.releases(spec.kube_context)]
    namespaces = previews.preview_namespaces(releases, spec.namespace) | ref_namespaces(root, env)
    found = previews.stale(namespaces, branches, args.base)
    if not found:
        console.print(f"{env.name}: no preview to remove ({len(branches)} branches on {args.remote})")
        return 0
    for item in found:
        console.print(f"{item.namespace}: {item.reason}")
    if not args.dry_run and not _confirm(args, protected=True)(f"removing {len(found)} preview environment(s) "
                                                               "(data included)"):
        return 1
    return _teardown(root, env, cli, [item.namespace for item in found], args.dry_run)


def cmd_destroy(args, root: Path) -> int:
    env = config.load(root, args.env)
    if env.spec.protected:
        raise GuardError(f"{env.name} is protected: destroy is for integration and preview environments only")
    if args.merged:
        return destroy_merged(args, root, env)
    confirm = _confirm(args, protected=True)  # destroy cannot be undone
    spec = env.spec.helm
    if args.preview:
        if not env.spec.preview or spec is None:
            raise ConfigError(f"{env.file}: preview: environment {env.name} has no preview environments")
    if not confirm(f"destroying {env.name}{' preview ' + args.preview if args.preview else ''} (data included)"):
        return 1
    if spec is not None:
        from airstack.deploy.helm_binary import HelmBinary

        cli = HelmBinary()
        if args.preview:
            return _teardown(root, env, cli, [config.preview_name(args.preview)])
        else:
            tgt = target.target(spec)
            for name in (tgt.airflow_release, tgt.platform_release):
                cli.uninstall(name, tgt.namespace, spec.kube_context, spec.timeout)
                console.print(f"{name}: uninstalled")
    if env.spec.cloudformation and not args.preview:
        from airstack.deploy import aws
        from airstack.deploy import cloudformation as cfn

        cf_spec = env.spec.cloudformation
        specs = cfn.load_stacks(root, cf_spec.stacks, root / cf_spec.parameters, cf_spec.stack_prefix)
        cfn.destroy(aws.client_factory(cf_spec.region)("cloudformation"), specs,
                    confirm=lambda spec_: True, console=console)
    return 0


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
