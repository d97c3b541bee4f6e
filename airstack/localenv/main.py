"""``python -m airstack.localenv VERB``: the local environment's sessions.

up, down, restart, status, logs [SERVICE], shell, clean, run DAG_ID. This module parses the
arguments; :class:`airstack.localenv.env.LocalEnv` does the work.
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from airstack import paths
from airstack.cli import run_main
from airstack.localenv import ports, ready
from airstack.localenv.config import LocalConfig
from airstack.localenv.env import LocalEnv
from airstack.localenv.runtime import RUNTIMES

console = Console(soft_wrap=True)


def _up(env: LocalEnv, args) -> int:
    return env.up(args.runtime, s3=args.s3, celery=args.celery, metrics=args.metrics, timeout=args.timeout)


def _restart(env: LocalEnv, args) -> int:
    env.down()
    return _up(env, args)


def _status(env: LocalEnv, args) -> int:
    report = env.status()
    if args.json:
        print(json.dumps(report, indent=2))
        return report["exit_code"]
    table = Table(title=f"local environment, {report['runtime']} runtime ({report['api_url']})", title_justify="left")
    for column in ("service", "pid", "health", "listens on"):
        table.add_column(column)
    for row in report["services"]:
        state = str(row["pid"] or "stopped") if row["service"] != "postgres" else \
            ("running" if row["running"] else "stopped")
        table.add_row(row["service"], state, row["health"] or "-", row["listens_on"] or "-")
    console.print(table)
    console.print(f"postgres: {report['postgres']}")
    for other in report["other_checkouts"]:
        console.print(f"another checkout's local environment: {other['root']} (api-server 127.0.0.1:"
                      f"{other['api_port']}, Postgres {other['postgres_port']}; "
                      f"{'running' if other['running'] else 'stopped'})", markup=False, highlight=False)
    return report["exit_code"]


VERBS = {
    "up": _up,
    "down": lambda env, args: env.down(),
    "restart": _restart,
    "status": _status,
    "logs": lambda env, args: env.logs(args.service, args.lines),
    "shell": lambda env, args: env.shell(),
    "clean": lambda env, args: env.clean(args.yes),
    "run": lambda env, args: env.run(args.dag_id, args.timeout, args.json),
}


def _up_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", choices=RUNTIMES)
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health, then for the DAGs")
    p.add_argument("--s3", action="store_true", help="task logs and storage on a local S3 stand-in (moto)")
    p.add_argument("--celery", action="store_true", help="CeleryExecutor: Redis, a Celery worker, flower")
    p.add_argument("--metrics", action="store_true", help="StatsD metrics for Prometheus on 127.0.0.1:9102/metrics")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="also the services' logs and the commands run (copy-pasteable)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p = argparse.ArgumentParser(prog="python -m airstack.localenv", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)
    _up_flags(sub.add_parser("up", parents=[common], help="start Airflow with the repo's DAGs and settings/local; "
                             f"wait until every DAG file is parsed (exit {ready.IMPORT_ERRORS_EXIT}: up, with "
                             "import errors)"))
    sub.add_parser("down", parents=[common], help="stop everything, keep the data")
    _up_flags(sub.add_parser("restart", parents=[common], help="down, then up"))
    sub.add_parser("status", parents=[common, as_json], help="services, health, ports")
    logs = sub.add_parser("logs", parents=[common], help="the last lines of every service's log (or one)")
    logs.add_argument("service", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=50)
    sub.add_parser("shell", parents=[common], help="a shell with the Airflow CLI configured for the local env")
    clean = sub.add_parser("clean", parents=[common], help="remove everything, data included")
    clean.add_argument("--yes", action="store_true")
    run = sub.add_parser("run", parents=[common, as_json], help="trigger a DAG run and follow it to its end state")
    run.add_argument("dag_id")
    run.add_argument("--timeout", type=float, default=600.0)
    return p


def _verbose() -> None:
    """--verbose: the commands `proc` runs, copy-pasteable (logged at debug level), on stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("$ %(message)s"))
    log = logging.getLogger("airstack.proc")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.verbose:
        _verbose()
    config = ports.recorded(LocalConfig.from_env(paths.repo_root()))
    return VERBS[args.verb](LocalEnv(config, console, verbose=args.verbose), args)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
