"""DAG-only deploys (``deploy ENV --dags``) and the DAG bundle step of a full deploy.

``--dags`` touches no image, no stack and no chart. It runs the DAG checks (``python -m
airstack.dagtools.check``, this environment's Airflow), moves the
environment's deploy ref (:mod:`airstack.git_bundle`) to the checked-out commit, and
rewrites the release record with the new bundle version. Only a commit that changed nothing
outside ``dags/`` since the environment's last full deploy can ship this way. Anything else needs
a full deploy, because the images, charts and settings it runs would no longer be the record's.

An environment with ``release.promote_from`` (production) runs no checks. It ships the bundle
version that the source's record names, and only while both environments run the same full
deploy (the same record commit).

A full deploy moves the ref before Helm, so that new pods clone what the values name.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from airstack import proc
from airstack import git_bundle
from airstack.deploy import config, dag_bundles, guards, release
from airstack.errors import AirstackError, ConfigError
from airstack.settings.deploy_file import DagBundle

console = Console(highlight=False)


def _records(env: config.Environment):
    from airstack.deploy import aws

    return aws.client_factory(env.spec.cloudformation.region if env.spec.cloudformation else None)("s3")


def bundle_of(env: config.Environment) -> DagBundle:
    bundle = env.spec.airflow.dag_bundle
    if bundle.kind != "git":
        raise ConfigError(f"{env.file}: airflow.dag_bundle.kind: {bundle.kind!r}: a deployed environment gets its "
                          "DAGs from a git bundle (kind: git, repository: the remote Airflow clones)")
    return bundle


def run_checks(root: Path) -> None:
    """The gate for DAG files: ``python -m airstack.dagtools.check``, this environment's Airflow, own process."""
    console.rule("DAG checks (python -m airstack.dagtools.check)")
    if proc.run_streaming([sys.executable, "-m", "airstack.dagtools.check"], cwd=root):
        raise AirstackError("the DAG checks failed: nothing was deployed")


def checked_is_shipped(root: Path, version: str) -> None:
    """The checks read the working tree and the deploy ships the commit ``version`` (HEAD): refuse where they
    differ, so that what ships is what was checked."""
    dirty = guards.dirty_paths(root) or []
    if dirty:
        raise ConfigError(f"--dags checks the working tree and ships commit {version[:12]}, and the tree has "
                          f"{len(dirty)} uncommitted change(s) ({guards.shown_paths(dirty)}): commit them "
                          "(or `git stash -u`), then deploy again")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def own_version(root: Path, env: config.Environment, current: release.Record | None, recorded: bool) -> str:
    """This commit, if it changed only DAGs since the environment's last full deploy (its record; ``recorded``:
    the environment keeps records, a preview and the local env do not)."""
    head = git_bundle.head_commit(root)
    if not head:
        raise ConfigError("--dags ships a commit: run it in a git checkout with at least one commit")
    if current is None:
        if recorded:
            raise ConfigError(f"no release record of {env.name}: deploy {env.name} in full first "
                              f"(nox -s deploy-{env.name}), then DAG changes with --dags")
        return head
    changed = dag_bundles.changed_outside(root, current.commit, head)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise ConfigError(f"--dags ships DAGs only, and since {env.name}'s last full deploy ({current.commit[:12]}) "
                          f"this commit also changed {shown}: deploy in full (nox -s deploy-{env.name})")
    return head


def promoted_version(env: config.Environment, current: release.Record | None, source: release.Record | None) -> str:
    """The source environment's bundle version, if both run the same full deploy."""
    name = env.spec.release.promote_from
    if source is None or not source.dags.get("version"):
        raise release.PromotionError(f"{env.name} ships only what {name} ran: {name}'s record names no DAG "
                                     f"bundle version (deploy {name} first)")
    if current is None or current.commit != source.commit:
        raise release.PromotionError(f"{env.name} ships only what {name} ran: {name} runs the full deploy of "
                                     f"{source.commit[:12]}, {env.name} "
                                     f"{current.commit[:12] if current else 'none'}: promote it in full first "
                                     f"(nox -s deploy-{env.name})")
    return source.dags["version"]


def ship(root: Path, env: config.Environment, ref: str, version: str, dry_run: bool) -> None:
    """Move the deploy ref to ``version`` (shown first; nothing moves with ``dry_run``)."""
    bundle = bundle_of(env)
    url = git_bundle.remote_url(root, bundle)
    if not dry_run:
        git_bundle.ensure_local_remote(root, url)
    before = git_bundle.remote_version(root, url, ref)
    console.print(f"dags: {url} {ref}: {(before or 'none')[:12]} -> {version[:12]}"
                  + (" (unchanged)" if before == version else ""))
    if dry_run or before == version:
        return
    dag_bundles.ensure_commit(root, url, version, ref)
    git_bundle.push(root, url, version, ref)
    console.print(f"[green]dags[/]: {ref} now {version[:12]}: the DAG processor parses it at its next refresh "
                  f"(every {bundle.refresh_interval} s); running DagRuns keep their version")


def deploy_dags(root: Path, env: config.Environment, preview: str | None, dry_run: bool,
                confirm: Callable[[str], bool]) -> int:
    """``deploy ENV --dags``: the DAG bundle only (``preview``: that preview's namespace), then the release record."""
    bundle = bundle_of(env)
    spec = env.spec.release
    s3 = _records(env) if spec is not None and not preview else None
    current = release.read(s3, spec.records, env.name) if s3 else None
    promotes = s3 is not None and spec.promote_from is not None
    if promotes:
        source = release.read(s3, spec.records, spec.promote_from)
        version = promoted_version(env, current, source)
    else:
        version = own_version(root, env, current, recorded=s3 is not None)
        checked_is_shipped(root, version)
        run_checks(root)
    ref = git_bundle.deploy_ref(env.name, preview)
    if not dry_run and not confirm(f"moving {env.name}'s DAGs to {version[:12]}"):
        raise AirstackError("declined: DAGs not deployed")
    ship(root, env, ref, version, dry_run)
    if current is not None and not dry_run:
        record = dataclasses.replace(current, dags=dag_bundles.record_entry(bundle, ref, version), deployed_at=_now(),
                                     promoted_from=spec.promote_from or "")
        console.print(f"release record: {release.write(s3, spec.records, record)}")
    console.print(f"[green]{env.name}[/]: {'planned (nothing changed)' if dry_run else 'DAGs deployed'}")
    return 0


def full_deploy(root: Path, env: config.Environment, tgt, source: release.Record | None,
                dry_run: bool) -> tuple[list[dict] | None, dict[str, str]]:
    """A full deploy's DAGs: the ref moved (to this commit, or to what ``source`` names when promoting)
    before Helm; returns the chart's bundle list and the record's entry."""
    bundle = bundle_of(env)
    ref = git_bundle.deploy_ref(env.name, tgt.namespace if tgt.preview else None)
    version = source.dags.get("version", "") if source is not None else git_bundle.head_commit(root)
    if not version:
        raise ConfigError("the DAG bundle ships a commit: run the deploy in a git checkout with at least one commit")
    ship(root, env, ref, version, dry_run)
    listed = git_bundle.config_list(bundle, ref, git_bundle.remote_url(root, bundle))
    return listed, dag_bundles.record_entry(bundle, ref, version)
