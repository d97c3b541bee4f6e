"""One deploy of one environment, step by step: :class:`Deployer` owns the order (a library: no command line here).

``Deployer(root, request).run()`` checks everything before it changes anything (settings, the auth policy, a
protected environment's guards, the images and their digests, or a promotion's record), then deploys the stacks
(outputs feeding later stacks), snapshots a protected environment's database where the charts may migrate it, moves
the DAG bundle's deploy ref, upgrades the platform chart and the official chart (settings on Helm's stdin), and writes
its release record. ``request.dry_run`` (``plan``) shows what would change and changes nothing; ``request.dags``
moves only the DAG bundle (:mod:`airstack.deploy.dagdeploy`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from airstack import cli, verdict
from airstack.config_files import read_yaml
from airstack.deploy import (auth_policy, aws, chart_values, cloudformation, config, dagdeploy, guards, ingress,
                             migration_timeout, preflight, preview_access, preview_db, snapshot, target)
from airstack.deploy.guards import GuardError
from airstack.deploy.helm_binary import HelmBinary, process_timeout
from airstack.deploy.request import DeployRequest
from airstack.deploy.shipping import Images, Promotion, copy_promoted, images, plan_promotion, write_record
from airstack.errors import AirstackError, ConfigError
from airstack.settings import store
from airstack.settings.schema import SettingsFile

console = Console(highlight=False)


def branch_of(root: Path, given: str | None) -> str:
    """The preview's branch: ``given``, else the checked-out one."""
    branch = given or guards.current_branch(root)
    if branch in ("", "HEAD"):
        raise ConfigError("--preview needs a branch: check one out, or give --branch NAME")
    return branch


def confirmer(yes: bool, protected: bool) -> Callable[[str], bool]:
    """Asks before each change of a protected environment, or before what cannot be undone (``protected``)."""
    return lambda what: cli.confirm(f"apply {what}?", yes=yes, protected=protected, hint=guards.NOT_INTERACTIVE_HINT)


def run_guards(root: Path, env: config.Environment, request: DeployRequest) -> None:
    """A protected environment's guards, all of them, before anything changes."""
    if not env.spec.protected:
        return
    problems = [p for p in (guards.clean_tree(root), guards.release_ref(root),
                            guards.settings_encrypted(root, env.name),
                            None if request.dry_run else guards.interactive(request.yes)) if p]
    if problems:
        raise GuardError("\n".join(f"{env.name} is protected: {p}" for p in problems))


def check_settings(root: Path, env: config.Environment) -> None:
    """deploy.yaml's connection ids and the Celery broker URL exist in secret.yaml (read without its key)."""
    rel = store.secret_path(root, env.name).relative_to(root).as_posix()
    secret = store.stored(root, env.name)
    problems = config.settings_problems(env, rel, secret)
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


def values_files(root: Path, env: config.Environment) -> list[tuple[str, dict]]:
    """The official chart's values files of ``env``, in order, each as (its path, its values)."""
    return [(name, read_yaml(root / name, name)) for name in env.spec.helm.airflow.values]


def check_auth(root: Path, env: config.Environment) -> None:
    """The official chart's auth manager, as the environment's values files set it: never SimpleAuthManager."""
    problems = auth_policy.auth_problems(values_files(root, env))
    if problems:
        raise ConfigError("\n".join(f"{env.file}: helm.airflow.values: {p}" for p in problems))


class Deployer:
    """A deploy of ``request.env`` from the checkout at ``root``; :meth:`run` takes the steps in order."""

    def __init__(self, root: Path, request: DeployRequest) -> None:
        self.root, self.request = root, request
        self.env = config.load(root, request.env)
        self.confirm = confirmer(request.yes, self.env.spec.protected)
        # The charts are in this deploy: the environment has Helm releases, and neither --only nor --dags leaves them.
        self.charts = self.env.spec.helm is not None and request.only != "cloudformation" and not request.dags
        self.checks = preflight.Checks(self.env.name, request.dry_run)

    def run(self) -> int:
        """Every check, then every change; the exit code (a plan's checks that failed or could not run count)."""
        self.check()
        if self.request.dags:  # the DAG bundle only: no image, no stack, no chart (airstack/deploy/dagdeploy.py)
            preview = config.preview_name(branch_of(self.root, self.request.branch)) if self.request.preview else None
            return dagdeploy.deploy_dags(self.root, self.env, preview, self.request.dry_run, self.confirm)
        imgs, promotion = self.ship() if self.charts else (None, None)  # every check before any change
        outputs = self.cloudformation()
        problems = config.stack_problems(self.env, outputs) if self.charts else []
        if problems:  # the pods' role could not reach the buckets deploy.yaml names: stop before Helm
            raise ConfigError("\n".join(problems))
        if promotion is not None and promotion.copies and not self.request.dry_run:
            copy_promoted(promotion)  # after the stacks (the registries), before the charts
        snap = snapshot.before_helm(self.root, self.env, self.request.dry_run, self.request.preview) \
            if self.charts else None  # may the charts migrate? snapshot first
        with migration_timeout.reported(self.env, snap):  # a migration past Helm's timeout is reported as such
            digest, dags = self.charts_step(imgs, promotion)
        if self.charts and self.env.spec.release is not None and not (self.request.dry_run or self.request.preview):
            write_record(self.root, self.env, imgs, digest, promotion, dags, snap.id if snap else "")
        counted = self.checks.tally.ran or self.checks.tally.not_run
        if counted:
            console.print(self.checks.summary())
        console.print(f"[green]{self.env.name}[/]: "
                      f"{'planned (nothing changed)' if self.request.dry_run else 'deployed'}")
        return verdict.exit_code(self.checks.word()) if counted else 0

    def check(self) -> None:
        """What is checked before anything is built: the request against deploy.yaml, settings, auth, guards."""
        env = self.env
        if self.request.preview and not env.spec.preview:
            raise ConfigError(f"{env.file}: preview: environment {env.name} has no preview environments")
        if self.charts:
            check_settings(self.root, env)
            check_auth(self.root, env)
        run_guards(self.root, env, self.request)

    def ship(self) -> tuple[Images | None, Promotion | None]:
        """The images the charts run, each resolved to its digest, and (promoting) the source's record: checked
        before any change."""
        env, request = self.env, self.request
        promotes = env.spec.release is not None and env.spec.release.promote_from is not None
        if promotes and not request.preview:  # ship the source's record: its images, copied by digest
            promotion = plan_promotion(self.root, env, self.checks)
            imgs = promotion.images if promotion else None
        else:
            promotion = None
            imgs = images(self.root, env, request.dry_run, request.skip_unavailable_base, self.checks)
            if env.spec.protected and imgs.unpushed and not request.dry_run:
                raise GuardError(f"{env.name} is protected: {guards.images_pushed(imgs.unpushed, imgs.registry)}")
        if imgs is not None and imgs.unpinned() and not request.dry_run:  # never Helm with a tag alone
            raise GuardError(f"{env.name}: no registry digest for {', '.join(imgs.unpinned())}: nothing was changed")
        return imgs, promotion

    def cloudformation(self) -> dict:
        """The stacks through change sets, in order; their outputs (none where this deploy has no stacks)."""
        cf_spec = self.env.spec.cloudformation
        if cf_spec is None or not self.request.stacks:
            return {}
        console.rule(f"CloudFormation ({cf_spec.region}, {len(cf_spec.stacks)} stacks)")
        root = self.root
        specs = cloudformation.load_stacks(root, cf_spec.stacks, root / cf_spec.parameters, cf_spec.stack_prefix)
        client = aws.client_factory(cf_spec.region)("cloudformation")
        return cloudformation.deploy(client, specs, dry_run=self.request.dry_run, console=console,
                                     confirm=lambda spec, _plan: self.confirm(f"the change set of {spec.stack_name}"))

    def charts_step(self, imgs: Images | None, promotion: Promotion | None) -> tuple[str, dict[str, str]]:
        """Where the releases go, their settings, the DAG bundle's ref, then both releases; returns the settings
        digest and the DAG bundle entry (for the release record)."""
        if self.env.spec.helm is None or imgs is None:
            return "", {}
        tgt = self.release_target()
        settings = self.load_settings(tgt)
        bundle_values, dags = self.dag_bundle(tgt, promotion)
        return self.helm_releases(tgt, settings, imgs, bundle_values), dags

    def release_target(self) -> target.Target:
        """The environment's namespace and releases, or (``request.preview``) the branch's own."""
        preview = config.preview_name(branch_of(self.root, self.request.branch)) if self.request.preview else None
        return target.target(self.env.spec.helm, preview)

    def load_settings(self, tgt: target.Target) -> SettingsFile:
        """The environment's settings, decrypted in memory only; a preview's with its own metadata database, never
        integration's (made before anything of the preview changes)."""
        settings = store.load(self.root, self.env.name)
        if tgt.preview:
            settings = preview_db.provision(settings, tgt.namespace, f"settings/{self.env.name}/secret.yaml",
                                            self.request.dry_run)
        return settings

    def dag_bundle(self, tgt: target.Target, promotion: Promotion | None) -> tuple[list[dict] | None, dict[str, str]]:
        """The DAG bundle's deploy ref moved (before Helm, so new pods clone what the values name): the chart's
        bundle list and the record's entry."""
        console.rule(f"DAG bundle ({self.env.spec.airflow.dag_bundle.kind})")
        return dagdeploy.full_deploy(self.root, self.env, tgt, promotion.source if promotion else None,
                                     self.request.dry_run)

    def helm_releases(self, tgt: target.Target, settings: SettingsFile, imgs: Images,
                      bundle_values: list[dict] | None) -> str:
        """Plan and (asked, where it changes) upgrade the platform release, then Airflow's; the settings digest."""
        root, env, request, spec = self.root, self.env, self.request, self.env.spec.helm
        console.rule(f"Helm (context {spec.kube_context}, namespace {tgt.namespace})")
        runtime = imgs.pinned("airflow")  # registry/airflow:tag@sha256:...: every image by digest
        options = env.spec.airflow
        platform_values = chart_values.platform_values(settings, tgt, runtime, options)
        workers = {k: imgs.pinned(k) for k in imgs.refs if k != "airflow"}
        digest = chart_values.settings_digest(platform_values)
        airflow_values = chart_values.airflow_values(tgt, runtime, workers, digest, options,
                                                     (root / chart_values.USERS_SCRIPT).read_text(), bundle_values)
        airflow_values = chart_values.with_oidc(airflow_values, tgt.airflow_release, settings.airflow.auth.oidc,
                                                (root / chart_values.OIDC_CONFIG).read_text())
        airflow_values = chart_values.keeping_listed(airflow_values, [v for _, v in values_files(root, env)])
        helm = HelmBinary(process_timeout(spec.timeout))  # never killed while Helm waits (a long migration)
        if tgt.preview:
            preview_access.grant(env, tgt, request.dry_run)
        for release, name, values in ((spec.platform, tgt.platform_release, platform_values),
                                      (spec.airflow, tgt.airflow_release, airflow_values)):
            changed, text = helm.diff(release, name, tgt.namespace, spec.kube_context, values)
            console.print(text if changed else f"{name}: no changes")
            if request.dry_run or not changed:
                continue
            if not self.confirm(f"the {name} release"):
                raise AirstackError(f"declined: {name} not upgraded")
            helm.upgrade(release, name, tgt.namespace, spec.kube_context, spec.timeout, values)
            console.print(f"[green]{name}[/]: upgraded")
        return digest
