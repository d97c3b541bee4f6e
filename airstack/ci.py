"""The CI pipeline, one definition: `.circleci/config.yml`'s workflow and `nox -s ci` run these
nox sessions in this order (tests/unit/test_circleci.py keeps the two equal)."""

from __future__ import annotations

# (job / session name, the arguments CircleCI passes after `--` on main). Branch builds add
# `--changed-since origin/main` to test and build-images and deploy integration with `--preview`.
PIPELINE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lint", ()),
    ("test", ()),
    ("build-images", ()),
    ("deploy-integration", ("--yes",)),
    ("deploy-production", ("--yes",)),
)
