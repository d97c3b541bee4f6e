"""Production's guards: what must hold before anything of a protected environment changes.

Each guard returns ``None`` when it holds, or the one line that says what is wrong and what
to do. They run before any image is pushed or any change set is created.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from airstack import proc
from airstack.errors import AirstackError

RELEASE_BRANCHES = ("main",)


class GuardError(AirstackError):
    """A guard of a protected environment does not hold."""


def _git(root: Path, *args: str):
    return proc.run(["git", *args], cwd=root, check=False, what="git")


def dirty_paths(root: Path) -> list[str] | None:
    """The paths ``git status`` shows as changed or untracked (not ignored); None outside a git checkout."""
    result = _git(root, "status", "--porcelain", "--untracked-files=normal")
    if result.returncode != 0:
        return None
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


def shown_paths(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def clean_tree(root: Path) -> str | None:
    dirty = dirty_paths(root)
    if dirty is None:
        return f"{root} is not a git checkout: production deploys from a commit"
    if dirty:
        return f"the git tree has uncommitted changes ({shown_paths(dirty)}): production deploys only committed code"
    return None


def current_branch(root: Path) -> str:
    """The checked-out branch; ``HEAD`` when detached, empty outside a git checkout."""
    out = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    return out.stdout.strip() if out.returncode == 0 else ""


def release_ref(root: Path) -> str | None:
    branch = current_branch(root)
    if branch in RELEASE_BRANCHES:
        return None
    tag = _git(root, "describe", "--exact-match", "--tags", "HEAD")
    if tag.returncode == 0 and tag.stdout.strip():
        return None
    return (f"HEAD is {'branch ' + branch if branch and branch != 'HEAD' else 'a detached commit'}: production "
            f"deploys from {' or '.join(RELEASE_BRANCHES)} or a tagged commit")


def settings_encrypted(root: Path, env: str) -> str | None:
    from airstack.settings import sops

    path = root / "settings" / env / "secret.yaml"
    if not path.is_file():
        return f"settings/{env}/secret.yaml does not exist"
    if not sops.is_encrypted(path):
        return f"settings/{env}/secret.yaml is not sops-encrypted: encrypt it (nox -s settings-edit -- {env}) first"
    return None


def images_pushed(unpushed: Iterable[str], registry: str) -> str | None:
    missing = sorted(unpushed)
    if missing:
        return (f"images not in {registry}: {', '.join(missing)}: push them from CI "
                f"(nox -s push-images -- --env ENV) before deploying production")
    return None


NOT_INTERACTIVE_HINT = "review `nox -s deploy-plan -- ENV`, then pass --yes"


def interactive(yes: bool, stdin_isatty: Callable[[], bool] = sys.stdin.isatty,
                environ: dict | None = None) -> str | None:
    """Before anything changes: refuse where nobody could answer :func:`airstack.cli.confirm` (no terminal,
    or CI) unless --yes."""
    from airstack.cli import interactive as can_ask

    if yes or can_ask(stdin_isatty, environ):
        return None
    return f"not interactive (no terminal or CI is set): {NOT_INTERACTIVE_HINT}"
