"""``python -m airstack.gate.lint [--changed-since REF]``: every linter of `nox -s lint`, or only on what changed.

flake8 (seed 000's settings, ``.flake8``) over the Python paths, ruff's Airflow 3 rules (AIR3:
removed, moved-to-provider and suggested-update imports and arguments, dynamic DAG values) over
``dags/`` and ``plugins/``, yamllint over the YAML files, the images' pin lint, and cfn-lint over
``infra/cloudformation/`` (the ``cfn-lint`` next to this interpreter), and checkov over the templates and the
images' Dockerfiles (airstack.gate.security_scan: a finding fails unless waived). With
``--changed-since REF`` flake8, ruff and yamllint get only the changed files, and cfn-lint runs
only when a template or parameter file changed. ``--report FILE`` writes what was checked, as the gate's
lane report (airstack.gate.report): each linter that ran passed or failed, over how many files; a linter with
nothing to look at is skipped (``--changed-since``: nothing of its changed) or could not run (no files at all).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from airstack import paths, proc
from airstack.verdict import Tally

PYTHON_PATHS = ("dags", "plugins", "airstack", "tests", "noxfile.py")
AIRFLOW_PATHS = ("dags", "plugins")  # ruff's Airflow rules: DAG and plugin code only
# Every AIR3 rule of the locked ruff; AIR304 (a value that changes on every parse) is a preview rule.
RUFF_AIRFLOW = ["check", "--no-cache", "--isolated", "--preview", "--select", "AIR3", "--output-format", "json"]
TEMPLATES = "infra/cloudformation"
# The stacks the deploy deploys, and the bootstrap stack an administrator deploys once (the CI roles).
TEMPLATE_GLOBS = (f"{TEMPLATES}/*.yaml", f"{TEMPLATES}/bootstrap/*.yaml")
UNITS = {"image pins": "images", "cfn-lint": "templates", "checkov": "templates and Dockerfiles"}
DOCKERFILES = "images/*/Dockerfile"
SKIP_DIRS = {".git", ".nox", ".venv", "__pycache__", "build", "dist", ".pytest_cache"}  # .flake8's exclude


def targets(root: Path, changed: list[str] | None) -> tuple[list[str], list[str], bool]:
    """(Python paths, YAML paths, whether to run cfn-lint); ``changed`` None means everything."""
    if changed is None:
        return [p for p in PYTHON_PATHS if (root / p).exists()], ["."], True
    present = [c for c in changed if (root / c).is_file()]
    python = [c for c in present if c.endswith(".py") and c.startswith(PYTHON_PATHS)]
    yaml = [c for c in present if c.endswith((".yaml", ".yml"))]
    return python, yaml, any(c.startswith(f"{TEMPLATES}/") for c in changed)


def scanned_changed(changed: list[str] | None) -> bool:
    """Whether checkov's inputs beyond the templates changed: a Dockerfile or the waivers (pure)."""
    return changed is not None and any(c.endswith("/Dockerfile") or c.startswith("security/") for c in changed)


def ruff_lines(stdout: str, cwd: Path) -> list[str]:
    """ruff's JSON findings as ``file:line:col: AIR3xx message`` lines, paths relative to ``cwd`` (pure)."""
    lines = []
    for f in json.loads(stdout or "[]"):
        fix = " [*]" if f.get("fix") and f["fix"].get("applicability") == "safe" else ""
        name = Path(f["filename"]).resolve()
        shown = name.relative_to(cwd.resolve()) if name.is_relative_to(cwd.resolve()) else name
        lines.append(f"{shown}:{f['location']['row']}:{f['location']['column']}: {f['code']}{fix} {f['message']}")
    return lines


def ruff_airflow(paths: list[str], cwd: Path) -> int:
    """ruff's AIR3 rules over ``paths``: one ``file:line:col: AIR3xx message`` line per finding.

    (In preview mode ruff's own text output names rules instead of codes, so its JSON is printed here.)
    """
    result = proc.run([sys.executable, "-m", "ruff", *RUFF_AIRFLOW, *paths], cwd=cwd, check=False)
    if result.returncode not in (0, 1):
        print(result.stderr, file=sys.stderr)
        return result.returncode
    findings = ruff_lines(result.stdout, cwd)
    for line in findings:
        print(line)
    if findings:
        print(f"ruff: {len(findings)} Airflow 3 finding(s); `ruff check --select AIR3 --preview --fix "
              f"--unsafe-fixes {' '.join(paths)}` rewrites the imports it can")
    return 1 if findings else 0


def count_python(root: Path, given: list[str]) -> int:
    """How many Python files flake8 reads under ``given`` (files and folders)."""
    files = 0
    for name in given:
        path = root / name
        files += 1 if path.is_file() else sum(1 for f in path.rglob("*.py")
                                              if not SKIP_DIRS.intersection(f.relative_to(root).parts))
    return files


def count_yaml(root: Path, given: list[str]) -> int:
    """How many files yamllint reads (its own ``--list-files``, its ignores applied)."""
    result = proc.run([sys.executable, "-m", "yamllint", "--list-files", "-c", ".yamllint.yaml", *given],
                      cwd=root, check=False)
    return len(result.stdout.split())


def tally(results: dict[str, tuple[int, int | None]], ref: str | None) -> tuple[Tally, str]:
    """(the tally, what was checked) of ``{linter: (files, exit code or None: not run)}`` (pure)."""
    counts, checked = Tally(), []
    for name, (files, code) in results.items():
        if code is None:
            if ref:
                counts.add_skip(f"nothing it reads changed since {ref}")
            else:
                counts.add_not_run(f"{name}: nothing to lint")
            continue
        counts.passed += code == 0
        counts.failed += code != 0
        checked.append(f"{name} {files} {UNITS.get(name, 'files')}")
    return counts, ", ".join(checked)


def write_report(path: Path, counts: Tally, checked: str) -> None:
    path.write_text(json.dumps({"tally": counts.as_dict(), "checked": checked, "empty_by_design": ""}))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s lint --", description=__doc__)
    parser.add_argument("--changed-since", metavar="REF", help="lint only what changed since git REF")
    parser.add_argument("--report", metavar="FILE", type=Path, help="write what was checked to FILE (the gate's)")
    # `nox -s test -- ARGS` hands ARGS to lint too (it requires lint): keep ours, leave pytest's.
    args, _ = parser.parse_known_args(argv)
    root = paths.repo_root()
    changed = None
    if args.changed_since:
        from airstack.gate.affected import changed_files

        changed = changed_files(root, args.changed_since)
        print(f"--changed-since {args.changed_since}: {len(changed)} changed files")
    python, yaml, cfn = targets(root, changed)
    airflow = [p for p in python if p.startswith(AIRFLOW_PATHS)]
    steps = {
        "flake8": (python, [sys.executable, "-m", "flake8", *python]),
        "yamllint": (yaml, [sys.executable, "-m", "yamllint", "--strict", "-c", ".yamllint.yaml", *yaml]),
        "image pins": (["images"], [sys.executable, "-m", "airstack.images", "lint"]),
        "cfn-lint": (list(TEMPLATE_GLOBS) if cfn else [],
                     [str(Path(sys.executable).with_name("cfn-lint")), *TEMPLATE_GLOBS]),
        "checkov": ([*TEMPLATE_GLOBS, DOCKERFILES] if cfn or scanned_changed(changed) else [],
                    [sys.executable, "-m", "airstack.gate.security_scan", "iac"]),
    }
    results = {name: (len(given), proc.run_streaming(argv, cwd=root) if given else None)
               for name, (given, argv) in steps.items()}
    results["ruff (AIR3)"] = (len(airflow), ruff_airflow(airflow, root) if airflow else None)
    failed = [name for name, (_, code) in results.items() if code]
    if failed:
        print(f"lint failed: {', '.join(failed)}", file=sys.stderr)
    if args.report:
        files = {"flake8": count_python(root, python), "ruff (AIR3)": count_python(root, airflow),
                 "yamllint": count_yaml(root, yaml) if yaml else 0,
                 "image pins": sum(1 for d in (root / "images").iterdir() if d.is_dir()),
                 "cfn-lint": sum(len(list(root.glob(g))) for g in TEMPLATE_GLOBS),
                 "checkov": sum(len(list(root.glob(g))) for g in (*TEMPLATE_GLOBS, DOCKERFILES))}
        write_report(args.report, *tally({n: (files[n], code) for n, (_, code) in results.items()},
                                         args.changed_since))
    return 1 if failed else 0


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
