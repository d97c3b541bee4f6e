"""Destroying a preview environment: everything ``deploy --preview`` made, each part on its own line.

A preview owns, and ``destroy --preview BRANCH`` / ``destroy --merged`` remove, in this order:

- its two Helm releases (``<name>``, ``<name>-platform``) in namespace ``<name>``;
- its pods' AWS identity (EKS Pod Identity associations of the namespace: :mod:`airstack.deploy.preview_access`);
- its metadata database and role on integration's database server (:mod:`airstack.deploy.preview_db`);
- its Kubernetes namespace (``kubectl delete namespace``: :mod:`airstack.deploy.kubectl_binary`);
- its DAG bundle's deploy ref ``airstack/dags/previews/<name>`` on the bundle's remote (``git push :ref``);
- its objects under ``previews/<name>/`` in the remote-logging and storage buckets (every version, and the
  delete markers of a versioned bucket), listed page by page and deleted in batches of at most 1000.

Each part is reported as ``removed``, ``already absent`` or ``failed: <cause>``; a failure does not stop
the other parts, and is counted by :func:`remove` (then the command ends with one error line, exit
code 1). Nothing outside the
preview's own names is touched: not integration's namespace, releases, refs or objects, nor another
preview's (``previews/<name>/`` with its slash, so ``airflow-x`` never matches ``airflow-x-2``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from airstack.deploy import config, previews
from airstack.deploy import target
from airstack.errors import AirstackError

console = Console(highlight=False, soft_wrap=True)  # one line each, however long

REMOVED, ABSENT, FAILED, WOULD = "removed", "already absent", "failed", "would remove"
BATCH = 1000  # S3 DeleteObjects takes at most 1000 keys


@dataclass(frozen=True)
class Outcome:
    what: str
    state: str
    detail: str = ""

    def line(self, namespace: str) -> str:
        colour = {REMOVED: "green", FAILED: "red"}.get(self.state)
        state = f"[{colour}]{self.state}[/]" if colour else self.state
        return f"{namespace}: {self.what}: {state}" + (f": {self.detail}" if self.detail else "")


def prefixes(options, tgt: target.Target) -> list[tuple[str, str]]:
    """(bucket, key prefix) of each bucket the preview's pods write to: ``previews/<namespace>/`` (pure)."""
    buckets = [config.bucket_of(store.base) for store in (options.remote_logging, options.storage) if store]
    return [(bucket, f"{target.PREVIEW_PREFIX}/{tgt.namespace}/") for bucket in dict.fromkeys(buckets)]


def delete_prefix(s3, bucket: str, prefix: str) -> int:
    """Delete every object version and delete marker under ``prefix``; returns how many were deleted.

    The listing is read to its end first (page by page), then deleted in batches: deleting between pages
    would move the listing's markers under it."""
    keys = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        keys += [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for field in ("Versions", "DeleteMarkers") for v in page.get(field) or []
                 if v["Key"].startswith(prefix)]
    for start in range(0, len(keys), BATCH):
        batch = keys[start:start + BATCH]
        errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}).get("Errors") or []
        if errors:
            first = errors[0]
            raise AirstackError(f"s3://{bucket}/{first.get('Key')}: {first.get('Code')}: {first.get('Message')} "
                                f"({len(errors)} of {len(batch)} not deleted)")
    return len(keys)


def _step(what: str, action: Callable[[], str | bool | None]) -> Outcome:
    """Run one part; True/None -> removed, False -> already absent, a text -> removed with that detail."""
    try:
        result = action()
    except AirstackError as exc:
        return Outcome(what, FAILED, " ".join(str(exc).split()))
    except Exception as exc:  # boto3/botocore errors of a single part: reported, the others go on
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, (BotoCoreError, ClientError)):
            raise
        return Outcome(what, FAILED, " ".join(str(exc).split()))
    if result is False:
        return Outcome(what, ABSENT)
    return Outcome(what, REMOVED, result if isinstance(result, str) else "")


@dataclass
class Context:
    """What the parts of every preview's removal share, each looked up once (lazily)."""

    root: Path
    env: config.Environment
    helm: object
    kubectl: object
    releases: set[tuple[str, str]] | None = None
    _settings: object = None
    _identity: object = None
    _s3: object = None

    def settings(self):
        if self._settings is None:
            from airstack.settings import store

            self._settings = store.load(self.root, self.env.name)  # decrypted in memory only
        return self._settings

    def identity(self):
        if self._identity is None:
            from airstack.deploy import preview_access

            self._identity = (preview_access.find(self.env),)
        return self._identity[0]

    def s3(self):
        if self._s3 is None:
            from airstack.deploy import aws

            cf = self.env.spec.cloudformation
            self._s3 = aws.client_factory(cf.region if cf else None)("s3")
        return self._s3


def _release(ctx: Context, name: str, namespace: str) -> bool:
    spec = ctx.env.spec.helm
    if ctx.releases is None:
        ctx.releases = set(ctx.helm.releases(spec.kube_context))
    if (name, namespace) not in ctx.releases:
        return False
    ctx.helm.uninstall(name, namespace, spec.kube_context, spec.timeout)
    return True


def _pod_identity(ctx: Context, namespace: str) -> str | bool:
    from airstack.deploy import preview_access

    identity = ctx.identity()
    if identity is None:
        return False
    removed = preview_access.revoke(identity, namespace)
    return f"{removed} association(s)" if removed else False


def _database(ctx: Context, namespace: str) -> bool:
    from airstack.deploy import preview_db

    settings = ctx.settings()
    where = f"settings/{ctx.env.name}/secret.yaml"
    db = preview_db.plan(settings.airflow.metadata_connection, namespace, where)
    return preview_db.drop(db, settings.airflow.metadata_connection)


def _deploy_ref(ctx: Context, namespace: str, ref: str) -> bool:
    from airstack import git_bundle
    from airstack.deploy import dag_bundles

    url = git_bundle.remote_url(ctx.root, ctx.env.spec.airflow.dag_bundle)
    if git_bundle.remote_version(ctx.root, url, ref) is None:
        return False
    dag_bundles.delete(ctx.root, url, ref)
    return True


def _s3_prefix(ctx: Context, bucket: str, prefix: str) -> str | bool:
    from botocore.exceptions import ClientError

    try:
        count = delete_prefix(ctx.s3(), bucket, prefix)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return False  # no bucket: nothing of the preview in it either
        raise
    return f"{count} object version(s)" if count else False


def ref_namespaces(root: Path, env: config.Environment) -> set[str]:
    """Previews that still have a deploy ref on the DAG bundle's remote (``destroy --merged`` finds those whose
    releases are gone, e.g. destroyed before destroy removed everything, by these too); none if it cannot say."""
    from airstack import git_bundle
    from airstack.deploy import dag_bundles

    bundle = env.spec.airflow.dag_bundle
    if bundle is None or bundle.kind != "git":
        return set()
    prefix = git_bundle.deploy_ref(env.name, "x").rsplit("/", 1)[0]
    try:
        found = dag_bundles.remote_branches(root, git_bundle.remote_url(root, bundle), prefix)
    except git_bundle.BundleError as exc:
        console.print(f"[yellow]warning[/]: previews judged by their releases only: {exc}")
        return set()
    names = {ref.rsplit("/", 1)[-1] for ref in found}
    return {n for n in names if n.startswith(previews.PREVIEW_PREFIX) and n != env.spec.helm.namespace}


def parts(ctx: Context, namespace: str) -> list[tuple[str, Callable[[], str | bool | None]]]:
    """(what, action) of each part of one preview, in order (nothing runs here)."""
    from airstack import git_bundle
    from airstack.deploy import preview_db

    env, spec = ctx.env, ctx.env.spec.helm
    tgt = target.target(spec, namespace)
    found = [(f"release {name}", lambda name=name: _release(ctx, name, tgt.namespace))
             for name in (tgt.airflow_release, tgt.platform_release)]
    found.append(("pod identity", lambda: _pod_identity(ctx, namespace)))
    database, role = preview_db.names(namespace)
    found.append((f"database {database} and role {role}", lambda: _database(ctx, namespace)))
    found.append((f"namespace {namespace}",
                  lambda: ctx.kubectl.delete_namespace(namespace, spec.kube_context, spec.timeout)))
    bundle = env.spec.airflow.dag_bundle
    if bundle is not None and bundle.kind == "git":
        ref = git_bundle.deploy_ref(env.name, namespace)
        found.append((f"deploy ref {ref}", lambda: _deploy_ref(ctx, namespace, ref)))
    for bucket, prefix in prefixes(env.spec.airflow, tgt):
        found.append((f"s3://{bucket}/{prefix}", lambda b=bucket, p=prefix: _s3_prefix(ctx, b, p)))
    return found


def remove(ctx: Context, namespaces: Iterable[str], dry_run: bool = False) -> int:
    """Remove each preview's parts (``dry_run``: say what would be removed); returns how many parts failed."""
    failed = 0
    for namespace in namespaces:
        if namespace == ctx.env.spec.helm.namespace or not namespace.startswith(previews.PREVIEW_PREFIX):
            raise AirstackError(f"{namespace}: not a preview's namespace: nothing of it is removed")
        for what, action in parts(ctx, namespace):
            outcome = Outcome(what, WOULD) if dry_run else _step(what, action)
            if outcome.detail.startswith(f"{namespace}: "):  # an error that names the preview: named already
                outcome = Outcome(outcome.what, outcome.state, outcome.detail[len(namespace) + 2:])
            failed += outcome.state == FAILED
            console.print(outcome.line(namespace))
    return failed
