"""``python -m airstack.lint [--changed-since REF]``: every linter of `nox -s lint`, or only on what changed.

flake8 (seed 000's settings, ``.flake8``) over the Python paths, yamllint over the YAML files,
the images' pin lint, and cfn-lint over ``infra/cloudformation/`` (from the deploy toolchain,
``--cfn-lint PATH``). With ``--changed-since REF`` flake8 and yamllint get only the changed
files, and cfn-lint runs only when a template or parameter file changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from airstack import paths, proc

PYTHON_PATHS = ("dags", "plugins", "airstack", "tests", "noxfile.py")
TEMPLATES = "infra/cloudformation"


def targets(root: Path, changed: list[str] | None) -> tuple[list[str], list[str], bool]:
    """(Python paths, YAML paths, whether to run cfn-lint); ``changed`` None means everything."""
    if changed is None:
        return [p for p in PYTHON_PATHS if (root / p).exists()], ["."], True
    present = [c for c in changed if (root / c).is_file()]
    python = [c for c in present if c.endswith(".py") and c.startswith(PYTHON_PATHS)]
    yaml = [c for c in present if c.endswith((".yaml", ".yml"))]
    return python, yaml, any(c.startswith(f"{TEMPLATES}/") for c in changed)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s lint --", description=__doc__)
    parser.add_argument("--changed-since", metavar="REF", help="lint only what changed since git REF")
    parser.add_argument("--cfn-lint", default="cfn-lint", help="the cfn-lint executable (the deploy environment's)")
    # `nox -s test -- ARGS` hands ARGS to lint too (it requires lint): keep ours, leave pytest's.
    args, _ = parser.parse_known_args(argv)
    root = paths.repo_root()
    changed = None
    if args.changed_since:
        from airstack.affected import changed_files

        changed = changed_files(root, args.changed_since)
        print(f"--changed-since {args.changed_since}: {len(changed)} changed files")
    python, yaml, cfn = targets(root, changed)
    steps = []
    if python:
        steps.append([sys.executable, "-m", "flake8", *python])
    if yaml:
        steps.append([sys.executable, "-m", "yamllint", "--strict", "-c", ".yamllint.yaml", *yaml])
    steps.append([sys.executable, "-m", "airstack.images", "lint"])
    if cfn:
        steps.append([args.cfn_lint, f"{TEMPLATES}/*.yaml"])
    failed = [step[2] if step[1] == "-m" else Path(step[0]).name for step in steps
              if proc.run_streaming(step, cwd=root) != 0]
    if failed:
        print(f"lint failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
