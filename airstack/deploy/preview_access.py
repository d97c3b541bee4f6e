"""A preview environment's AWS access: its service accounts get cluster.yaml's PreviewRole (EKS Pod Identity),
limited to its own S3 prefix; removed with the preview (:mod:`airstack.deploy.pod_identity` makes the calls)."""

from __future__ import annotations

from rich.console import Console

from airstack.deploy import config
from airstack.deploy import target

console = Console(highlight=False)


def find(env: config.Environment):
    """(eks client, cluster, PreviewRole ARN) for a preview's pod identities; None without a cluster stack."""
    from airstack.deploy import aws, pod_identity

    cf_spec = env.spec.cloudformation
    if cf_spec is None or pod_identity.CLUSTER_STACK not in cf_spec.stacks:
        return None
    clients = aws.client_factory(cf_spec.region)
    cluster, role = pod_identity.target(clients("cloudformation"), cf_spec.stack_prefix)
    return clients("eks"), cluster, role


def grant(env: config.Environment, tgt: target.Target, dry_run: bool) -> None:
    """A preview's service accounts get PreviewRole (their own S3 prefix), before its pods start."""
    from airstack.deploy import pod_identity

    found = find(env)
    if found is None:
        console.print(f"{tgt.namespace}: no cluster stack in {env.file}: the preview's pods get no AWS identity")
        return
    eks, cluster, role = found
    created = pod_identity.ensure(eks, cluster, tgt.namespace, tgt.airflow_release, role, dry_run=dry_run)
    verb = "would associate" if dry_run else "associated"
    console.print(f"{tgt.namespace}: {verb} {', '.join(created) or 'nothing new'} with the preview role "
                  f"(s3 prefix {target.PREVIEW_PREFIX}/{tgt.namespace}/)")


def revoke(identity, namespace: str) -> int:
    """Remove the namespace's associations; returns how many. ``identity``: what :func:`find` found."""
    from airstack.deploy import pod_identity

    if identity is None:
        return 0
    eks, cluster, _ = identity
    return pod_identity.remove(eks, cluster, namespace)
