"""What a deploy or a destroy is asked to do: decided once, from the command line (:mod:`airstack.deploy.main`), then
read by every step (:mod:`airstack.deploy.deployer`, :mod:`airstack.deploy.destroy`). Frozen, so no step changes
what the next one reads; nothing here reads a file or runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Only = Literal["helm", "cloudformation"]


@dataclass(frozen=True)
class DeployRequest:
    """``plan|deploy ENV``: which environment, which parts, and how to ask."""

    env: str
    dry_run: bool = False  # plan: change nothing (``plan`` is ``deploy --dry-run``)
    only: Only | None = None  # one part: the charts or the stacks
    preview: bool = False  # integration: the branch's own namespace and releases
    branch: str | None = None  # with ``preview``: the branch (None: the checked-out one)
    yes: bool = False  # apply without asking (CI, after a reviewed plan)
    dags: bool = False  # the DAG bundle only (airstack/deploy/dagdeploy.py)
    skip_unavailable_base: bool = False  # leave out images whose base image cannot be had (local replays)

    @property
    def stacks(self) -> bool:
        """Whether CloudFormation is in this deploy (a preview has no stacks of its own)."""
        return self.only != "helm" and not self.preview and not self.dags


@dataclass(frozen=True)
class DestroyRequest:
    """``destroy ENV``: the whole environment, one preview (by branch), or the previews of merged branches."""

    env: str
    preview: str | None = None  # a branch: remove its preview environment only
    merged: bool = False  # every preview whose branch is merged into ``base`` or gone from ``remote``
    remote: str = "origin"
    base: str = "main"
    fetch: bool = True  # with ``merged``: fetch ``remote`` first
    dry_run: bool = False  # with ``merged``: list them, remove nothing
    yes: bool = False
