"""What a deploy ships: its images, by content tag (built and pushed here, or promoted by digest from
the environment a ``release.promote_from`` names), and the release record it writes
(:mod:`airstack.deploy.release`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console

from airstack import dag_bundles as bundles
from airstack.deploy import config
from airstack.deploy.guards import GuardError
from airstack.errors import ConfigError

console = Console(highlight=False)


@dataclass
class Images:
    registry: str
    refs: dict[str, str]  # name -> registry/name:tag
    unpushed: list[str]


@dataclass
class Promotion:
    """What an environment with ``release.promote_from`` ships: the source's record, its images copied."""
    source: object  # release.Record
    images: Images
    copies: dict[str, tuple[str, str]]  # name -> (source registry/name@sha256, target registry/name:tag)


def images(root: Path, env: config.Environment, args) -> Images:
    """The environment's image references by content tag; built and pushed where allowed."""
    from airstack.images import api as images_api

    push = not args.dry_run and not env.spec.protected
    specs, registry = images_api.select(root), env.spec.images.registry
    planned = images_api.build(root, specs, registry=registry, push=True,
                               skip_unavailable_base=args.skip_unavailable_base) if push else \
        images_api.plan(root, specs, registry=registry)
    registry = registry.rstrip("/")
    refs = {p.spec.name: p.remote_ref(registry) for p in planned if p.tag != "-"}
    unpushed = [p.spec.name for p in planned if not (p.remote or push)]
    if "airflow" not in refs:
        raise ConfigError("images/airflow (the runtime image) has no content tag: its base image is unavailable")
    return Images(registry, refs, unpushed)


def records_client(env: config.Environment):
    from airstack.deploy import aws

    return aws.client_factory(env.spec.cloudformation.region if env.spec.cloudformation else None)("s3")


def _chart_versions(root: Path, env: config.Environment) -> dict[str, str]:
    spec = env.spec.helm
    versions = {"airflow": spec.airflow.version or "", "platform": spec.platform.version or ""}
    for part in ("airflow", "platform"):
        chart = getattr(spec, part).chart
        if not versions[part] and (root / chart / "Chart.yaml").is_file():
            versions[part] = str(yaml.safe_load((root / chart / "Chart.yaml").read_text())["version"])
    return versions


def plan_promotion(root: Path, env: config.Environment, args) -> Promotion:
    """The source environment's record for this commit, shown against this environment's; refused unless
    the source ran this very commit with these very images. Nothing is copied here."""
    from airstack.deploy import release
    from airstack.images import api as images_api

    records, source_env = env.spec.release.records, env.spec.release.promote_from
    s3 = records_client(env)
    source = release.read(s3, records, source_env)
    planned = [p for p in images_api.plan(root, images_api.select(root), registry=env.spec.images.registry)
               if p.tag != "-"]
    tags = {p.spec.name: p.tag for p in planned}
    where = "s3://{}/{}".format(*release.record_key(records, source_env))
    problems = release.promotion_problems(source, source_env, bundles.head_commit(root), tags, where)
    if problems:
        raise GuardError("\n".join(f"{env.name} ships only what {source_env} ran: {p}" for p in problems))
    registry = env.spec.images.registry.rstrip("/")
    refs = {p.spec.name: p.remote_ref(registry) for p in planned}
    copies = {p.spec.name: (source.ref(p.spec.name), refs[p.spec.name]) for p in planned if not p.remote}
    current = release.read(s3, records, env.name)
    rows = release.differences(current, source)
    console.rule(f"release: {env.name} <- {source_env}'s record ({where})")
    for what, now, then in rows:
        console.print(f"{what}: {now} -> {then}", highlight=False)
    if not rows:
        console.print(f"{env.name} already runs {source_env}'s release (commit {source.commit[:12]})")
    if copies:
        console.print(f"images to copy by digest into {registry}: {', '.join(sorted(copies))}")
    return Promotion(source, Images(registry, refs, []), copies)


def write_record(root: Path, env: config.Environment, imgs: Images, digest: str,
                 promotion: Promotion | None, dags: dict[str, str]) -> None:
    """What this deploy shipped, for the environments that promote from this one (and for the audit)."""
    from datetime import datetime, timezone

    from airstack.deploy import release
    from airstack.images import api as images_api

    digests = images_api.digests(imgs.refs)
    if promotion is not None:
        expected = {name: image["digest"] for name, image in promotion.source.images.items() if name in digests}
        if digests != expected:
            raise release.PromotionError(f"{env.name}'s registry holds other images than {promotion.source.environment}"
                                         f" ran: {digests} != {expected}")
    record = release.Record(
        environment=env.name, commit=bundles.head_commit(root), registry=imgs.registry,
        images={name: {"tag": ref.rsplit(":", 1)[1], "digest": digests[name]} for name, ref in imgs.refs.items()},
        charts=_chart_versions(root, env), settings_digest=digest,
        deployed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        promoted_from=promotion.source.environment if promotion else "", dags=dags)
    console.print(f"release record: {release.write(records_client(env), env.spec.release.records, record)}")
