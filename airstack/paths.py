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
