"""The order of a deploy (moved from :mod:`airstack.deploy.main`): checks, images, stacks, snapshot, DAG bundle,
charts, release record."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from rich.console import Console

from airstack import cli, verdict
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
