"""Preview environments' lifecycle: which previews outlived their branch (pure), and the git facts that says.

A preview is the pair of releases ``deploy --preview`` makes in a namespace of their own:
``<name>`` (the official chart) and ``<name>-platform``, where ``<name>`` is
:func:`config.preview_name` of the branch. ``destroy ENV --merged`` removes each preview whose
branch is merged into the base branch, or no longer exists on the remote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from airstack import proc
from airstack.deploy.config import preview_name
from airstack.errors import ConfigError

PREVIEW_PREFIX = "airflow-"  # preview_name()'s base


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str


@dataclass(frozen=True)
class Stale:
    namespace: str
    reason: str


def preview_namespaces(releases: Iterable[Release], main_namespace: str) -> set[str]:
    """The namespaces holding a preview: its official-chart release is named like the namespace (pure)."""
    return {r.namespace for r in releases
            if r.name == r.namespace and r.namespace != main_namespace and r.name.startswith(PREVIEW_PREFIX)}


def stale(namespaces: Iterable[str], branches: dict[str, bool], base: str) -> list[Stale]:
    """Previews to remove (pure): ``branches`` maps each remote branch to whether it is merged into ``base``."""
    live = {preview_name(branch): branch for branch in branches if branch != base}
    found = []
    for namespace in sorted(namespaces):
        branch = live.get(namespace)
        if branch is None:
            found.append(Stale(namespace, "no branch on the remote names it (deleted, or renamed)"))
        elif branches[branch]:
            found.append(Stale(namespace, f"branch {branch} is merged into {base}"))
    return found


def _git(root: Path, *args: str) -> str:
    result = proc.run(["git", *args], cwd=root, check=False, timeout=120, what="git")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [""])[-1]
        raise ConfigError(f"git {args[0]} failed in {root}: {last}")
    return result.stdout


def remote_branches(root: Path, remote: str, base: str, fetch: bool = True) -> dict[str, bool]:
    """The remote's branches (after ``git fetch --prune``), each with whether it is merged into ``remote/base``."""
    if fetch:
        _git(root, "fetch", "--prune", "--quiet", remote)
    refs = f"refs/remotes/{remote}/"
    names = {line[len(refs):] for line in _git(root, "for-each-ref", "--format=%(refname)", refs).splitlines()
             if line.startswith(refs) and line != f"{refs}HEAD"}
    if base not in names:
        raise ConfigError(f"{remote}/{base} does not exist in {root}: previews are judged against the base branch "
                          "(--base NAME)")
    listed = _git(root, "for-each-ref", "--format=%(refname)", f"--merged={refs}{base}", refs)
    merged = {line[len(refs):] for line in listed.splitlines()}
    return {name: name in merged for name in sorted(names)}
