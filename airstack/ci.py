"""The CI pipeline, one definition: `.circleci/config.yml`'s workflow and `nox -s ci` run these
nox sessions in this order (tests/unit/test_circleci.py keeps the two equal)."""

from __future__ import annotations

# (job / session name, the arguments CircleCI passes after `--` on main). Branch builds add
# `--changed-since origin/main` to test, test-platform (which then runs only when the tooling
# changed: airstack/, the locks, the noxfile) and build-images, and deploy integration with `--preview`.
# A branch's test job also runs `nox -s dag-diff` (a report kept as an artifact, not a job of its own).
PIPELINE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lint", ()),
    ("test", ()),
    ("test-platform", ()),
    ("build-images", ()),
    ("deploy-integration", ("--yes",)),
    ("deploy-production", ("--yes",)),
)

# DAG-only deploys: `.circleci/config.yml`'s `dags` workflow, which runs instead of the pipeline when
# a pipeline is triggered with the parameter `dags-only: true` (CircleCI's "Trigger Pipeline", or its
# API). The same gate, then only the DAG bundle moves (airstack/deploy/dagdeploy.py): no image
# build, no stack, no chart; production (after approval) ships integration's bundle version.
# `nox -s ci` replays the steps that PIPELINE does not already run.
DAGS_PIPELINE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lint", ()),
    ("test", ()),
    ("deploy-integration", ("--dags", "--yes")),
    ("deploy-production", ("--dags", "--yes")),
)

# What `nox -s ci` adds where it runs here rather than on CircleCI: the conda base image
# (micromamba) cannot be pulled on these machines, so its build is reported and skipped instead
# of failing the local pipeline (CircleCI builds it).
LOCAL_EXTRA_ARGS: dict[str, tuple[str, ...]] = {"build-images": ("--skip-unavailable-base",)}
