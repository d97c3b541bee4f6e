"""The local env's DAG bundle: the working tree (default), or the deployed environments' git bundle.

settings/local/deploy.yaml ``airflow.dag_bundle.kind: git`` runs the same GitDagBundle as
integration and production (:mod:`airstack.git_bundle`). It works on a local bare repository
(``repository``, relative to the repo root), tracking ``airstack/dags/local``. Airflow then parses
committed versions only, and each DagRun keeps the commit it started with.
``python -m airstack.deploy deploy local --dags`` ships the checked-out
commit after the DAG checks. The first ``up`` ships the checked-out commit when the ref has none
yet. Native runtime only: the docker runtime's containers do not see the host's repository.
"""

from __future__ import annotations

from pathlib import Path

from airstack import git_bundle
from airstack.settings.deploy_file import DagBundle
from airstack.errors import ConfigError

LOCAL_DEPLOY = "settings/local/deploy.yaml"
STORAGE_ENV = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"


def ref() -> str:
    return git_bundle.deploy_ref("local")


def airflow_env(root: Path, bundle: DagBundle) -> dict[str, str]:
    """The Airflow services' environment for a git bundle (pure); nothing for the working tree."""
    if bundle.kind != "git":
        return {}
    url = git_bundle.remote_url(root, bundle)
    return {**git_bundle.config_env(bundle, ref(), url),
            STORAGE_ENV: str(root / ".airstack" / "local" / "dag-bundles")}


def ensure_version(root: Path, bundle: DagBundle) -> str | None:
    """The commit the local bundle names; the checked-out one, shipped, when it names none yet."""
    if bundle.kind != "git":
        return None
    url = git_bundle.remote_url(root, bundle)
    git_bundle.ensure_local_remote(root, url)
    version = git_bundle.remote_version(root, url, ref())
    if version:
        return version
    head = git_bundle.head_commit(root)
    if not head:
        raise ConfigError(f"{LOCAL_DEPLOY}: airflow.dag_bundle.kind: git serves committed DAGs: commit first "
                          "(or use kind: local, the working tree)")
    git_bundle.push(root, url, head, ref())
    return head
