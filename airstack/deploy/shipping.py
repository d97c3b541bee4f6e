"""What a deploy ships: its images, by content tag and registry digest (built and pushed here, or promoted by
digest from the environment a ``release.promote_from`` names), and the release record it writes
(:mod:`airstack.deploy.release`).

Every image is resolved to its registry digest before anything changes, and Helm is given
``registry/name:tag@sha256:...``: the digest is what runs. A promotion compares the digests of its target
registry with the source's record first (:func:`plan_promotion`), and again after the copy, before Helm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console

from airstack import git_bundle
from airstack.deploy import config
from airstack.deploy.preflight import Checks
from airstack.errors import ConfigError

console = Console(highlight=False)


@dataclass
class Images:
    registry: str
    refs: dict[str, str]  # name -> registry/name:tag
    unpushed: list[str]
    digests: dict[str, str] = field(default_factory=dict)  # name -> sha256:... (resolved before any change)

    def pinned(self, name: str) -> str:
        """``registry/name:tag@sha256:...`` (the digest is what a node pulls), or the tag alone where none is known
        yet (a plan of images not pushed yet)."""
        digest = self.digests.get(name)
        return f"{self.refs[name]}@{digest}" if digest else self.refs[name]

    def unpinned(self) -> list[str]:
        return sorted(set(self.refs) - set(self.digests))


@dataclass
class Promotion:
    """What an environment with ``release.promote_from`` ships: the source's record, its images copied."""
    source: object  # release.Record
    images: Images
    copies: dict[str, tuple[str, str]]  # name -> (source registry/name@sha256, target registry/name:tag)


def images(root: Path, env: config.Environment, dry_run: bool, skip_unavailable_base: bool,
           checks: Checks) -> Images:
    """The environment's image references by content tag; built and pushed where allowed; then each pushed one's
    registry digest (the check ``image digests``)."""
    from airstack.images import api as images_api

    push = not dry_run and not env.spec.protected
    specs, registry = images_api.select(root), env.spec.images.registry
    planned = images_api.build(root, specs, registry=registry, push=True,
                               skip_unavailable_base=skip_unavailable_base) if push else \
        images_api.plan(root, specs, registry=registry)
    registry = registry.rstrip("/")
    refs = {p.spec.name: p.remote_ref(registry) for p in planned if p.tag != "-"}
    unpushed = [p.spec.name for p in planned if not (p.remote or push)]
    if "airflow" not in refs:
        raise ConfigError("images/airflow (the runtime image) has no content tag: its base image is unavailable")
    shipped = Images(registry, refs, unpushed)
    with checks.step("image digests") as step:  # every image asked: a registry that does not answer is no "absent"
        found = images_api.lookup_digests(refs)
        shipped.digests = {n: d for n, d in found.items() if d}
        if push:
            step.problems = [f"image {n}: {refs[n]} is not in its registry after the push: push it again "
                             f"(nox -s push-images -- --env {env.name})" for n, d in sorted(found.items()) if not d]
    if unpushed:
        console.print(f"not pushed yet, so no digest to pin: {', '.join(sorted(unpushed))}")
    return shipped


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


def _source_record(root: Path, env: config.Environment, s3, checks: Checks):
    """(the source's record, the images this commit plans) once the record shows it ran this commit; None where the
    record could not be read (a plan goes on)."""
    from airstack.deploy import release
    from airstack.images import api as images_api

    records, source_env = env.spec.release.records, env.spec.release.promote_from
    where = "s3://{}/{}".format(*release.record_key(records, source_env))
    with checks.step(f"{source_env}'s release record ran this commit") as step:
        source = release.read(s3, records, source_env)
        planned = [p for p in images_api.plan(root, images_api.select(root), registry=env.spec.images.registry)
                   if p.tag != "-"]
        tags = {p.spec.name: p.tag for p in planned}
        step.problems = [f"{env.name} ships only what {source_env} ran: {p}" for p in
                         release.promotion_problems(source, source_env, git_bundle.head_commit(root), tags, where)]
    return (source, planned, where) if step.ran else None


def plan_promotion(root: Path, env: config.Environment, checks: Checks) -> Promotion | None:
    """The source environment's record for this commit, shown against this environment's; refused unless the
    source ran this very commit with these very images, and unless every tag this environment's registry already
    has holds the very digest the source ran (a retagged image). Nothing is copied here. None: the source's
    record could not be read (a plan only: a deploy stops in ``checks``)."""
    from airstack.deploy import release
    from airstack.images import api as images_api

    records, source_env = env.spec.release.records, env.spec.release.promote_from
    s3 = records_client(env)
    found_source = _source_record(root, env, s3, checks)
    if found_source is None:
        return None
    source, planned, where = found_source
    registry = env.spec.images.registry.rstrip("/")
    refs = {p.spec.name: p.remote_ref(registry) for p in planned}
    ran = {name: source.images[name]["digest"] for name in refs}
    found: dict[str, str | None] = dict.fromkeys(refs)  # unknown (a plan whose registry check could not run)
    with checks.step(f"{env.name}'s registry holds what {source_env} ran") as step:
        found = images_api.lookup_digests(refs)
        step.problems = release.registry_problems(env.name, source_env, refs, ran, found)
        sources = {name: source.ref(name) for name in refs if found[name] is None}  # to copy: still there?
        step.problems += [f"image {name}: {ref} is not in {source_env}'s registry any more: nothing to copy; deploy "
                          f"{source_env} again from this commit" for name, ref in sorted(sources.items())
                          if images_api.lookup_digests({name: ref})[name] is None]
    copies = {name: (source.ref(name), refs[name]) for name in refs if found.get(name) is None}
    rows = []
    with checks.step(f"{env.name}'s release record") as step:
        rows = release.differences(release.read(s3, records, env.name), source)
    console.rule(f"release: {env.name} <- {source_env}'s record ({where})")
    for what, now, then in rows:
        console.print(f"{what}: {now} -> {then}", highlight=False)
    if step.ran and not rows:
        console.print(f"{env.name} already runs {source_env}'s release (commit {source.commit[:12]})")
    if copies:
        console.print(f"images to copy by digest into {registry}: {', '.join(sorted(copies))}")
    return Promotion(source, Images(registry, refs, [], ran), copies)


def copy_promoted(promotion: Promotion) -> None:
    """Copy the images the target registry lacks, then check, before Helm, that each tag holds the digest the source
    ran (a registry that rewrote a manifest, or a push racing this one, stops the deploy here)."""
    from airstack.deploy import release
    from airstack.images import api as images_api

    images_api.promote(promotion.copies)
    refs = {name: promotion.images.refs[name] for name in promotion.copies}
    found = images_api.lookup_digests(refs)
    problems = [f"image {name}: {refs[name]} is {found[name] or 'absent'} after the copy, but "
                f"{promotion.source.environment} ran {promotion.images.digests[name]}: nothing was deployed; "
                "check the registry, then deploy again"
                for name in sorted(refs) if found[name] != promotion.images.digests[name]]
    if problems:
        raise release.PromotionError("\n".join(problems))


def write_record(root: Path, env: config.Environment, imgs: Images, digest: str,
                 promotion: Promotion | None, dags: dict[str, str], db_snapshot: str = "") -> None:
    """What this deploy shipped (the digests Helm was given), for the environments that promote from this one
    (and for the audit), with the schema versions it runs and the snapshot taken before it."""
    from datetime import datetime, timezone

    from airstack.deploy import release, snapshot

    record = release.Record(
        environment=env.name, commit=git_bundle.head_commit(root), registry=imgs.registry,
        images={name: {"tag": ref.rsplit(":", 1)[1], "digest": imgs.digests[name]} for name, ref in imgs.refs.items()},
        charts=_chart_versions(root, env), settings_digest=digest,
        deployed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        promoted_from=promotion.source.environment if promotion else "", dags=dags,
        schema=snapshot.schema_versions((root / snapshot.LOCK).read_text()), db_snapshot=db_snapshot)
    console.print(f"release record: {release.write(records_client(env), env.spec.release.records, record)}")
