"""``nox -s test``'s two pytest runs: next to Airflow, then ``tests/deploy`` in the deploy toolchain's venv.

Without ``--changed-since`` both run in full, spread over every core (pytest-xdist). With
``--changed-since REF`` (airstack.affected; the pytest plugin airstack.pytest_affected
deselects the rest) a run with nothing affected is not started at all, and a small selection
runs in one process: starting workers that each import Airflow costs more than it saves.
"""

from __future__ import annotations

import argparse
import sys

from airstack import paths, proc

DEPLOY_TESTS = "tests/deploy"
# Affected test modules from which spreading over workers pays for the workers' start-up.
PARALLEL_FROM = 8


def plan(ref: str | None) -> tuple[list[str] | None, list[str] | None]:
    """(xdist options of the Airflow run, of the deploy run); None: nothing to run there."""
    parallel = ["--numprocesses=auto"]
    if not ref:
        return [*parallel, "--dist=loadgroup"], parallel
    from airstack.affected import for_ref

    _, affected = for_ref(paths.repo_root(), ref)
    if affected.everything:
        return [*parallel, "--dist=loadgroup"], parallel
    deploy = {t for t in affected.test_files if t.startswith(f"{DEPLOY_TESTS}/")}
    main = {t for t in affected.test_files if not t.startswith(f"{DEPLOY_TESTS}/")}

    def options(files: set[str], dist: list[str]) -> list[str] | None:
        if not files:
            return None
        return [*parallel, *dist] if len(files) >= PARALLEL_FROM else ["--numprocesses=0"]

    return options(main, ["--dist=loadgroup"]), options(deploy, [])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s test --", description=__doc__)
    parser.add_argument("--deploy-python", required=True, help="the deploy toolchain's python")
    parser.add_argument("--changed-since", metavar="REF")
    args, pytest_args = parser.parse_known_args(argv)
    if args.changed_since:
        pytest_args = [*pytest_args, "--changed-since", args.changed_since]
    main_opts, deploy_opts = plan(args.changed_since)
    code = 0
    if main_opts is None:
        print(f"--changed-since {args.changed_since}: no test next to Airflow is affected")
    else:
        code = proc.run_streaming([sys.executable, "-m", "pytest", *main_opts, f"--ignore={DEPLOY_TESTS}",
                                   *pytest_args])
    if deploy_opts is None:
        print(f"--changed-since {args.changed_since}: no deploy test is affected")
    else:
        deploy_code = proc.run_streaming([args.deploy_python, "-m", "pytest", *deploy_opts,
                                          f"--confcutdir={DEPLOY_TESTS}", DEPLOY_TESTS, *pytest_args])
        code = code or deploy_code
    return code


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
