"""DAG bundles: DAGs reach an environment as a versioned git bundle, not inside an image.

deploy.yaml's ``airflow.dag_bundle`` (kind ``git``) makes Airflow 3 run
``GitDagBundle`` (apache-airflow-providers-git) named ``dags``. It clones
``repository`` and tracks the branch ``airstack/dags/<target>``: this module calls it the
environment's *deploy ref*. A deploy moves that ref to the commit it ships with ``git push``, and
its release record names the commit. The DAG processor fetches every ``refresh_interval`` seconds
and parses the new commit as a new bundle version. Each DagRun keeps the version (the commit) it
started with, and its tasks check that commit out, so a running DagRun is never switched to
newer DAG code.

S3DagBundle (the amazon provider) was not chosen. It has ``supports_versioning = False``, so a
running DagRun would switch to whatever the bucket holds now.

Deploys (:mod:`airstack.deploy.dagdeploy`) and the local env (:mod:`airstack.localenv.bundle`) both use it, so it
sits below both layers; what only deploys do with the bundle (release record entries, DAG-only checks, a preview's
ref removed) is :mod:`airstack.deploy.dag_bundles`. The functions here are pure, except :func:`git`,
:func:`head_commit`, :func:`push`, :func:`ensure_local_remote` and :func:`remote_version`, which run git through
:mod:`airstack.proc`.
"""

from __future__ import annotations

import json
from pathlib import Path

from airstack import git_auth, proc
from airstack.settings.deploy_file import DagBundle
from airstack.errors import AirstackError

NAME = "dags"  # the bundle's name: DagRuns and DAG versions name it
CLASSPATH = "airflow.providers.git.bundles.git.GitDagBundle"
SUBDIR = "dags"  # the DAGs' folder in the repository (the bundle's root: `common` imports from there)
REF_PREFIX = "airstack/dags"
CONFIG_ENV = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


class BundleError(AirstackError):
    pass


def deploy_ref(env: str, preview: str | None = None) -> str:
    """The branch an environment's bundle tracks: ``airstack/dags/<env>`` (a preview: ``.../previews/<ns>``)."""
    return f"{REF_PREFIX}/previews/{preview}" if preview else f"{REF_PREFIX}/{env}"


def remote_url(root: Path, bundle: DagBundle) -> str:
    """The repository as git and Airflow reach it: a URL as written, a path made absolute (the local env's)."""
    url = bundle.repository or ""
    if "://" in url or url.startswith("git@"):
        return url
    return (root / url).resolve().as_uri()


def config_list(bundle: DagBundle, ref: str, url: str) -> list[dict]:
    """``[dag_processor] dag_bundle_config_list`` (the chart's ``dagProcessor.dagBundleConfigList``)."""
    kwargs = {"repo_url": url, "tracking_ref": ref, "subdir": SUBDIR, "refresh_interval": bundle.refresh_interval}
    if bundle.conn_id:
        kwargs["git_conn_id"] = bundle.conn_id
    return [{"name": NAME, "classpath": CLASSPATH, "kwargs": kwargs}]


def config_env(bundle: DagBundle, ref: str, url: str) -> dict[str, str]:
    return {CONFIG_ENV: json.dumps(config_list(bundle, ref, url))}


def git(root: Path, *args: str, check: bool = True, timeout: float = 120.0) -> proc.Result:
    """git in ``root``; a remote over HTTPS gets CI's token through a credential helper (:mod:`airstack.git_auth`)."""
    return proc.run(["git", *args], cwd=root, check=check, timeout=timeout, what=f"git {args[0]}",
                    env=git_auth.env() or None)


def head_commit(root: Path) -> str:
    """The checked-out commit's full hash; empty outside a git checkout (or before the first commit)."""
    out = git(root, "rev-parse", "HEAD", check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


def push(root: Path, url: str, commit: str, ref: str) -> None:
    """Move the deploy ref to ``commit`` (forced: a rollback moves it back; the ref is the deploy's own)."""
    try:
        git(root, "push", "--quiet", "--force", url, f"{commit}:refs/heads/{ref}")
    except proc.CommandFailedError as exc:
        raise BundleError(f"pushing the DAGs ({commit[:12]}) to {url} {ref}: {exc}") from None


def ensure_local_remote(root: Path, url: str) -> None:
    """A ``file://`` remote (the local env's, the stand-ins') is made, bare, on first use; others must exist."""
    if url.startswith("file://"):
        path = Path(url.removeprefix("file://"))
        if not path.exists():
            git(root, "init", "--quiet", "--bare", str(path))


def remote_version(root: Path, url: str, ref: str) -> str | None:
    """The commit the deploy ref names on the remote now (None: no such ref, or a local remote not made yet)."""
    if url.startswith("file://") and not Path(url.removeprefix("file://")).exists():
        return None
    try:
        out = git(root, "ls-remote", url, f"refs/heads/{ref}").stdout.split()
    except proc.CommandFailedError as exc:
        raise BundleError(f"reading {ref} from {url}: {exc}") from None
    return out[0] if out else None
