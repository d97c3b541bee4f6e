"""``python -m airstack.dagtools.check``: check DAG files and print a table (exit 1 on any violation)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from airstack import paths
from airstack.airflow_env import base_env, configured
from airstack.cli import run_main
from airstack.dagtools.check.parse import FileReport, check_files, dag_files
from airstack.dagtools.check.policy import DagPolicy, load_policy


def report_table(reports: list[FileReport], policy: DagPolicy) -> Table:
    table = Table(title="DAG files", title_justify="left")
    for column in ("file", "dags", "tasks", "parse s", "SQL at parse", "result"):
        # A narrow terminal folds a path onto more lines; it never cuts it.
        table.add_column(column, justify="right" if column in ("dags", "tasks", "parse s", "SQL at parse") else "left",
                         overflow="fold")
    for r in sorted(reports, key=lambda r: -r.parse_seconds):
        slow = r.over_budget(policy)
        parse = f"[yellow]{r.parse_seconds:.3f} > {policy.parse_time_budget:g}[/]" if slow else f"{r.parse_seconds:.3f}"
        rules = sorted({v.rule for v in r.violations})
        result = "[red]" + ", ".join(rules) + "[/]" if rules else "[green]ok[/]"
        table.add_row(r.file, str(len(r.dag_ids)), str(r.tasks), parse, str(r.sql_statements), result)
    return table


def report_console() -> Console:
    """A terminal's width; anything else (CI logs, pipes) is not cut at rich's default 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=1_000)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s check-dags --", description=__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="DAG files (default: every file Airflow would parse)")
    parser.add_argument("--dags-folder", type=Path, default=None, help="default: dags/ (or AIRSTACK_DAGS_FOLDER)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the reports as JSON here")
    args = parser.parse_args(argv)

    folder = (args.dags_folder or paths.dags_folder()).resolve()
    root = paths.repo_root()
    policy = load_policy(paths.pyproject())
    # Airflow configured for the check only: AIRFLOW_HOME is back as it was before its folder goes.
    with tempfile.TemporaryDirectory(prefix="airstack-dagcheck-") as home, \
            configured(base_env(Path(home), folder, root / "plugins")):
        files = args.files or dag_files(folder)
        reports = check_files(files, folder, policy, workers=min(args.workers, max(1, len(files) // 20)))
    console = report_console()
    console.print(report_table(reports, policy))
    violations = [v for r in reports for v in r.violations]
    for v in violations:
        console.print(str(v), markup=False, highlight=False, soft_wrap=True)
    if args.json:
        args.json.write_text(json.dumps([r.to_json(policy) for r in reports], indent=2))
    if not files:
        console.print(f"no DAG files found in {folder}")
        return 1
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
