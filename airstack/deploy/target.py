"""Where an environment's Helm releases go: its namespace and release names (a preview environment has its own),
and where its stores live in the buckets (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from airstack.settings.deploy_file import Helm


@dataclass(frozen=True)
class Target:
    """Where an environment's releases go (a preview environment changes the names)."""

    namespace: str
    platform_release: str
    airflow_release: str
    preview: bool = False


def target(helm: Helm, preview: str | None = None) -> Target:
    if preview:
        return Target(namespace=preview, platform_release=f"{preview}-platform"[:53].rstrip("-"),
                      airflow_release=preview, preview=True)
    return Target(helm.namespace, helm.platform.release, helm.airflow.release)


PREVIEW_PREFIX = "previews"


def store_base(base: str, tgt: Target) -> str:
    """Where a store lives for this target: a preview's is ``previews/<namespace>/`` of the bucket, the only
    prefix cluster.yaml's PreviewRole lets its pods use (``s3://b/logs`` -> ``s3://b/previews/<ns>/logs``)."""
    if not tgt.preview:
        return base
    bucket, _, rest = base.removeprefix("s3://").partition("/")
    return f"s3://{bucket}/{PREVIEW_PREFIX}/{tgt.namespace}" + (f"/{rest}" if rest else "")
