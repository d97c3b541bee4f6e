"""What only deploys do with the DAG bundle (:mod:`airstack.git_bundle`, which the local env shares): a release
record's entry, the check that a DAG-only deploy changed nothing outside ``dags/``, the commit it ships fetched
when missing, and a preview's deploy ref listed and removed (``destroy``).

The functions here run git through :func:`airstack.git_bundle.git`, except :func:`record_entry` and
:func:`outside`, which are pure.
"""

from __future__ import annotations

from pathlib import Path

from airstack import git_bundle, proc
from airstack.errors import ConfigError
from airstack.settings.deploy_file import DagBundle


def record_entry(bundle: DagBundle, ref: str, commit: str) -> dict[str, str]:
    """What a release record says about the DAGs it shipped."""
    return {"bundle": git_bundle.NAME, "kind": bundle.kind, "ref": ref, "version": commit}


def delete(root: Path, url: str, ref: str) -> None:
    """Remove the deploy ref from the remote (a preview's, when the preview is destroyed)."""
    try:
        git_bundle.git(root, "push", "--quiet", url, f":refs/heads/{ref}")
    except proc.CommandFailedError as exc:
        raise git_bundle.BundleError(f"deleting {ref} on {url}: {exc}") from None


def remote_branches(root: Path, url: str, prefix: str) -> list[str]:
    """The branches under ``prefix/`` on the remote (``ls-remote``; none where a local remote is not made yet)."""
    if url.startswith("file://") and not Path(url.removeprefix("file://")).exists():
        return []
    try:
        out = git_bundle.git(root, "ls-remote", url, f"refs/heads/{prefix}/*").stdout.splitlines()
    except proc.CommandFailedError as exc:
        raise git_bundle.BundleError(f"listing {prefix}/ on {url}: {exc}") from None
    return sorted(line.split("\t", 1)[1].removeprefix("refs/heads/") for line in out if "\t" in line)


def ensure_commit(root: Path, url: str, commit: str, ref: str) -> None:
    """Have ``commit`` locally (to push it elsewhere): fetch ``ref`` from the remote when it is missing."""
    if git_bundle.git(root, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0:
        return
    git_bundle.git(root, "fetch", "--quiet", url, f"refs/heads/{ref}", check=False)
    if git_bundle.git(root, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode != 0:
        raise git_bundle.BundleError(f"commit {commit[:12]} is neither in this checkout nor on {url} {ref}")


def changed_outside(root: Path, base: str, head: str, subdir: str = git_bundle.SUBDIR) -> list[str]:
    """Files that differ between ``base`` and ``head`` outside ``subdir``: what a DAG-only deploy cannot ship."""
    try:
        out = git_bundle.git(root, "diff", "--name-only", base, head).stdout.splitlines()
    except proc.CommandFailedError as exc:
        raise ConfigError(f"comparing {head[:12]} with the last full deploy's commit {base[:12]}: {exc} "
                          "(a shallow checkout? fetch more history)") from None
    return outside(out, subdir)


def outside(paths: list[str], subdir: str = git_bundle.SUBDIR) -> list[str]:
    """The paths not under ``subdir/`` (pure)."""
    return sorted(p for p in paths if p and not p.startswith(subdir.rstrip("/") + "/"))
