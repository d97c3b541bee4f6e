"""``destroy ENV``: an unprotected environment's releases and stacks, one preview environment, or the previews of
merged or deleted branches (a library: :func:`destroy` takes a :class:`DestroyRequest`).

A preview goes part by part (:mod:`airstack.deploy.teardown`: releases, pod identity, database, namespace, deploy
ref, objects), one line each; what failed is said, and the destroy can run again.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from airstack.deploy import aws, cloudformation, config, previews, target, teardown
from airstack.deploy.deployer import confirmer
from airstack.deploy.guards import GuardError
from airstack.deploy.helm_binary import HelmBinary
from airstack.deploy.kubectl_binary import KubectlBinary
from airstack.deploy.request import DestroyRequest
from airstack.errors import AirstackError, ConfigError

console = Console(highlight=False)


def _no_previews(env: config.Environment) -> ConfigError:
    return ConfigError(f"{env.file}: preview: environment {env.name} has no preview environments")


def _teardown(root: Path, env: config.Environment, helm: HelmBinary, namespaces: list[str],
              dry_run: bool = False) -> int:
    """Every part of each preview (airstack/deploy/teardown.py), one line each; an error if any part failed."""
    failed = teardown.remove(teardown.Context(root, env, helm, KubectlBinary()), namespaces, dry_run)
    if failed:
        raise AirstackError(f"{failed} part(s) not removed (the lines above say why): run the destroy again")
    return 0


def destroy_merged(root: Path, env: config.Environment, request: DestroyRequest) -> int:
    """Every preview whose branch is merged into the base branch or gone from the remote."""
    spec = env.spec.helm
    if not env.spec.preview or spec is None:
        raise _no_previews(env)
    branches = previews.remote_branches(root, request.remote, request.base, fetch=request.fetch)
    helm = HelmBinary()
    releases = [previews.Release(name, namespace) for name, namespace in helm.releases(spec.kube_context)]
    namespaces = previews.preview_namespaces(releases, spec.namespace) | teardown.ref_namespaces(root, env)
    found = previews.stale(namespaces, branches, request.base)
    if not found:
        console.print(f"{env.name}: no preview to remove ({len(branches)} branches on {request.remote})")
        return 0
    for item in found:
        console.print(f"{item.namespace}: {item.reason}")
    if not request.dry_run and not confirmer(request.yes, protected=True)(
            f"removing {len(found)} preview environment(s) (data included)"):
        return 1
    return _teardown(root, env, helm, [item.namespace for item in found], request.dry_run)


def destroy(root: Path, request: DestroyRequest) -> int:
    """Remove what ``request`` names (asked first: it cannot be undone); the exit code."""
    env = config.load(root, request.env)
    if env.spec.protected:
        raise GuardError(f"{env.name} is protected: destroy is for integration and preview environments only")
    if request.merged:
        return destroy_merged(root, env, request)
    spec = env.spec.helm
    if request.preview and (not env.spec.preview or spec is None):
        raise _no_previews(env)
    what = f"destroying {env.name}{' preview ' + request.preview if request.preview else ''} (data included)"
    if not confirmer(request.yes, protected=True)(what):  # destroy cannot be undone
        return 1
    if spec is not None:
        helm = HelmBinary()
        if request.preview:
            return _teardown(root, env, helm, [config.preview_name(request.preview)])
        tgt = target.target(spec)
        for name in (tgt.airflow_release, tgt.platform_release):
            helm.uninstall(name, tgt.namespace, spec.kube_context, spec.timeout)
            console.print(f"{name}: uninstalled")
    if env.spec.cloudformation and not request.preview:
        cf_spec = env.spec.cloudformation
        specs = cloudformation.load_stacks(root, cf_spec.stacks, root / cf_spec.parameters, cf_spec.stack_prefix)
        cloudformation.destroy(aws.client_factory(cf_spec.region)("cloudformation"), specs,
                               confirm=lambda spec_: True, console=console)
    return 0
