"""``destroy ENV`` (moved from :mod:`airstack.deploy.main`): an environment, one preview, or the merged previews."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from airstack.deploy import config, target
from airstack.deploy.deployer import _confirm
from airstack.deploy.guards import GuardError
from airstack.errors import AirstackError, ConfigError

console = Console(highlight=False)


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
