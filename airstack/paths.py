"""Where things are in the repository."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository root: ``AIRSTACK_ROOT`` if set, else the folder holding noxfile.py above this package."""
    env = os.environ.get("AIRSTACK_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent
    for candidate in (here, *here.parents):
        if (candidate / "noxfile.py").is_file() and (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd().resolve()


def dags_folder() -> Path:
    """The DAG folder under test: ``AIRSTACK_DAGS_FOLDER`` if set, else ``dags/``."""
    env = os.environ.get("AIRSTACK_DAGS_FOLDER")
    return Path(env).resolve() if env else repo_root() / "dags"


def pyproject() -> Path:
    return repo_root() / "pyproject.toml"


def scratch_copy(dest: Path, folders: tuple[str, ...], files: tuple[str, ...] = ("pyproject.toml",)) -> Path:
    """Copy parts of the repository to ``dest`` (caches and generated files left out) as a repo of its own.

    Tests and benchmarks point ``AIRSTACK_ROOT`` at it so that what they write (state, manifests)
    never touches the checkout.
    """
    import shutil

    root = repo_root()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "images.json")
    for folder in folders:
        shutil.copytree(root / folder, dest / folder, ignore=ignore)
    for name in files:
        shutil.copy(root / name, dest / name)
    (dest / "noxfile.py").write_text("")  # marks the root for repo_root()
    return dest
