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
    """The pytest arguments of the Airflow run and of the deploy run; None: nothing to run there.

    With a ref, only the affected test modules are named, so pytest imports (collects) just those.
    """
    parallel = ["--numprocesses=auto"]
    if not ref:
        return [*parallel, "--dist=loadgroup", f"--ignore={DEPLOY_TESTS}"], [*parallel, DEPLOY_TESTS]
    from airstack.affected import for_ref

    root = paths.repo_root()
    _, affected = for_ref(root, ref)
    if affected.everything:
        return [*parallel, "--dist=loadgroup", f"--ignore={DEPLOY_TESTS}"], [*parallel, DEPLOY_TESTS]
    existing = sorted(t for t in affected.test_files if (root / t).is_file())
    deploy = [t for t in existing if t.startswith(f"{DEPLOY_TESTS}/")]
    main = [t for t in existing if not t.startswith(f"{DEPLOY_TESTS}/")]

    def options(files: list[str], dist: list[str]) -> list[str] | None:
        if not files:
            return None
        return [*parallel, *dist, *files] if len(files) >= PARALLEL_FROM else ["--numprocesses=0", *files]

    return options(main, ["--dist=loadgroup"]), options(deploy, [])


def given_paths(pytest_args: list[str]) -> list[str]:
    """The test paths among pytest's arguments (``tests/dags``, ``tests/unit/test_x.py::test_y``)."""
    root = paths.repo_root()
    return [a for a in pytest_args if not a.startswith("-") and (root / a.split("::")[0]).exists()]


def _xdist(options: list[str] | None) -> list[str]:
    return [o for o in options or ["--numprocesses=0"] if o.startswith("--")]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s test --", description=__doc__)
    parser.add_argument("--deploy-python", required=True, help="the deploy toolchain's python")
    parser.add_argument("--changed-since", metavar="REF")
    args, pytest_args = parser.parse_known_args(argv)
    if args.changed_since:
        pytest_args = [*pytest_args, "--changed-since", args.changed_since]
    main_opts, deploy_opts = plan(args.changed_since)
    named = given_paths(pytest_args)
    if named:  # `nox -s test -- tests/dags ...`: each path to the run whose environment can import it
        pytest_args = [a for a in pytest_args if a not in named]
        mine = [p for p in named if not p.startswith(DEPLOY_TESTS)]
        theirs = [p for p in named if p.startswith(DEPLOY_TESTS)]
        main_opts = [*_xdist(main_opts), *mine] if mine else None
        deploy_opts = [*_xdist(deploy_opts), *theirs] if theirs else None
    code = 0
    if main_opts is None:
        print(f"--changed-since {args.changed_since}: no test next to Airflow is affected")
    else:
        code = proc.run_streaming([sys.executable, "-m", "pytest", *main_opts, *pytest_args])
    if deploy_opts is None:
        print(f"--changed-since {args.changed_since}: no deploy test is affected")
    else:
        deploy_code = proc.run_streaming([args.deploy_python, "-m", "pytest", f"--confcutdir={DEPLOY_TESTS}",
                                          *deploy_opts, *pytest_args])
        code = code or deploy_code
    return code


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
