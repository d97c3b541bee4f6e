"""``python -m airstack.localenv VERB``: the local environment's sessions.

up, down, restart, status, logs [SERVICE], shell, clean, run DAG_ID.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from rich.console import Console
from rich.table import Table

from airstack import paths, proc
from airstack.cli import run_main
from airstack.errors import AirstackError
from airstack.localenv import extras as options
from airstack.localenv import health, ports, ready
from airstack.localenv.config import SERVICES, LocalConfig, keys_environment
from airstack.localenv.native import LocalEnvError, NativeRuntime

console = Console(soft_wrap=True)


@contextmanager
def env_lock(config: LocalConfig, what: str):
    """One env at a time: a second `up`/`down`/`clean` on this checkout refuses with a clear message."""
    config.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with config.lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LocalEnvError(f"the local environment is busy ({holder}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"`{what}`, pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


def _runtime_file(config: LocalConfig) -> Path:
    return config.root / ".airstack" / "local" / "runtime"


def make_runtime(name: str, config: LocalConfig):
    if name == "docker":
        from airstack.docker_client import connect
        from airstack.localenv.docker_runtime import DockerRuntime

        return DockerRuntime(config, connect(timeout=600))
    return NativeRuntime(config)


def choose_runtime(requested: str | None, config: LocalConfig, extras: options.Extras | None = None):
    """--runtime; else the runtime this env already uses (its data lives there, until `clean`); else
    native when an option (--s3, --celery, --metrics) is on, docker where a daemon answers, else
    native. Says which and why."""
    from airstack.docker_client import docker_status

    wanted = ", ".join(f"--{s}" for s in ("s3", "celery", "metrics") if extras and getattr(extras, s))
    if requested:
        name, why = requested, "asked for"
    elif current_runtime(config):
        name, why = current_runtime(config), "this environment's runtime; `nox -s clean` to change"
    elif wanted:
        name, why = "native", f"{wanted} run in the native runtime"
    else:
        ok, reason = docker_status()
        name, why = ("docker", "a Docker daemon answers") if ok else ("native", f"no Docker: {reason}")
    if wanted and name != "native":
        raise LocalEnvError(f"{wanted} run in the native runtime, and this environment's is {name} ({why}): "
                            f"`nox -s down`, then `nox -s up -- --runtime native {wanted}`")
    recorded = current_runtime(config)
    if recorded and recorded != name and _anything_running(make_runtime(recorded, config)):
        raise LocalEnvError(f"the {recorded} runtime is running: `nox -s down` first, then `up` with {name}")
    return make_runtime(name, config), f"{name} ({why})"


def current_runtime(config: LocalConfig) -> str | None:
    path = _runtime_file(config)
    return path.read_text().strip() if path.is_file() else None


def _recorded_runtime(config: LocalConfig):
    return make_runtime(current_runtime(config) or "native", config)


def _anything_running(runtime) -> bool:
    return runtime.postgres_running() or any(runtime.pid(s) for s in SERVICES)


def _postgres_source(runtime) -> str:
    """Which Postgres the runtime runs: the native runtime's binaries, or the Docker runtime's image."""
    if isinstance(runtime, NativeRuntime):
        return runtime.postgres_source
    from airstack.external_images import image

    return f"the {image('postgres')} container"


def _local_settings(root: Path, config: LocalConfig | None = None):
    """settings/local. Its Postgres connections at 127.0.0.1:5433 mean this env's Postgres: in a checkout
    on other ports (ports.py) they follow this checkout's Postgres port."""
    from airstack.settings import store

    settings = store.load(root, "local")
    default = ports.DEFAULTS["postgres_port"]
    if config is None or config.postgres_port == default:
        return settings
    connections = [c.model_copy(update={"port": config.postgres_port})
                   if c.type == "postgres" and c.host in ("127.0.0.1", "localhost") and c.port == default else c
                   for c in settings.airflow.connections]
    return settings.model_copy(update={"airflow": settings.airflow.model_copy(update={"connections": connections})})


def _admin_dsn(dsn: str) -> str:
    from airstack.postgres.sql import with_database

    return with_database(dsn, "postgres")


def _create_database(dsn: str, name: str, owner: str | None = None) -> None:
    """CREATE DATABASE unless it exists (Postgres has no IF NOT EXISTS for databases)."""
    from psycopg2 import sql

    from airstack.postgres.sql import connect, execute_autocommit

    conn = connect(_admin_dsn(dsn))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            exists = cur.fetchone() is not None
    finally:
        conn.close()
    if not exists:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
        execute_autocommit(_admin_dsn(dsn), statement)


def _ensure_local_roles(config: LocalConfig, dsn: str, settings) -> list[str]:
    """Postgres connections of settings/local that point at this env's Postgres get their role and database."""
    from psycopg2 import sql

    from airstack.postgres.sql import execute_autocommit

    made = []
    for conn in settings.airflow.connections:
        if conn.type != "postgres" or conn.host not in ("127.0.0.1", "localhost") \
                or conn.port != config.postgres_port or not conn.login or conn.login == "airflow":
            continue
        role = sql.Identifier(conn.login)
        execute_autocommit(
            _admin_dsn(dsn),
            sql.SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN "
                    "CREATE ROLE {} LOGIN; END IF; END $$").format(sql.Literal(conn.login), role),
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(conn.password or "")),
        )
        _create_database(dsn, conn.schema_ or conn.login, owner=conn.login)
        made.append(conn.id)
    return made


def _schema_revision(dsn: str) -> str | None:
    from airstack.postgres.sql import connect

    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT version_num FROM alembic_version")
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def _migration_stamp(dsn: str) -> str:
    """What a migrated database looks like for this Airflow: its version and the schema revision."""
    from importlib.metadata import version

    return f"{version('apache-airflow-core')} {_schema_revision(dsn)}"


def _stamp_file(config: LocalConfig, runtime) -> Path:
    return config.state.parent / f"migrated-{runtime.name}"


def _already_migrated(config: LocalConfig, runtime) -> bool:
    stamp = _stamp_file(config, runtime)
    return stamp.is_file() and stamp.read_text() == _migration_stamp(runtime.metadata_dsn)


def _endpoints_file(config: LocalConfig) -> Path:
    return config.run / "options.json"


def _start_extras(runtime, extras: options.Extras, env: dict[str, str], started: float) -> None:
    """The options' servers that Airflow needs from its first task: S3 (with its buckets), Redis, metrics."""
    from airstack.localenv.ports import port_free

    for port, service, variable in options.listen_ports(extras):
        if not runtime.pid(service) and not port_free(port):
            raise LocalEnvError(ports.taken(runtime.config, port, service, variable))
    redis = proc.which("redis-server", "install Redis for --celery (Debian: apt-get install redis-server)") \
        if extras.celery else None
    for service in options.SERVERS:
        if service in extras.services:
            runtime.start_service(service, env, options.service_argv(extras, service, runtime.airflow, redis))
    if extras.s3:
        options.ensure_buckets(extras.s3)
    _endpoints_file(runtime.config).write_text(json.dumps(extras.endpoints()))
    for line in extras.describe():
        console.print(line)
    console.print(f"options started ({time.perf_counter() - started:.1f} s)")


def _migrate_and_import(config: LocalConfig, runtime, dsn: str, settings, migrate: bool, verbose: bool = False):
    """Migrate (unless current) and import settings/local. Airflow's own lines (alembic, the ORM, the
    masker) go to the `up` log, not the terminal (with --verbose, to the terminal); a failure shows that log's
    last lines."""
    from airflow.utils.db import upgradedb

    from airstack.output import output_to
    from airstack.settings import importer

    config.logs.mkdir(parents=True, exist_ok=True)
    log = config.log_file("up")
    try:
        with nullcontext() if verbose else output_to(log):
            if migrate:
                upgradedb()
                _stamp_file(config, runtime).write_text(_migration_stamp(dsn))
            roles = _ensure_local_roles(config, dsn, settings)
            return roles, importer.apply(settings.airflow)
    except AirstackError:
        raise  # one clear line already
    except Exception:
        console.print(f"the migration or the settings import failed; last lines of {log}:\n{health.tail(log)}",
                      markup=False, highlight=False)
        raise


class Phases:
    """Seconds since ``up`` began, per step, kept in the logs folder (``up-phases.json``) for the benchmark."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: dict[str, float] = {}

    def now(self) -> float:
        return time.perf_counter() - self.started

    def mark(self, name: str) -> float:
        self.marks[name] = round(self.now(), 3)
        return self.marks[name]

    def save(self, path: Path, **extra) -> None:
        path.write_text(json.dumps({**self.marks, **extra}, indent=1))


def _settings_to_import(config: LocalConfig, runtime, settings, migrated: bool) -> str | None:
    """The digest to import settings/local under, or None when the database already holds exactly it."""
    from airstack.localenv import applied

    wanted = applied.digest(settings.airflow, config.postgres_port)
    if migrated and applied.unchanged(_applied_file(config, runtime), wanted, runtime.metadata_dsn):
        return None
    return wanted


def _applied_file(config: LocalConfig, runtime) -> Path:
    return config.state.parent / f"applied-{runtime.name}"


def cmd_up(args, config: LocalConfig) -> int:
    phases = Phases()
    config = ports.claim(config)
    settings = _local_settings(config.root, config)
    extras = options.resolve(config.root, settings, s3=args.s3, celery=args.celery, metrics=args.metrics)
    runtime, why = choose_runtime(args.runtime, config, extras)
    console.print(f"runtime: {why}")
    with env_lock(config, "up"):
        env = config.airflow_env(keys_environment(settings.airflow.keys)) | runtime.pods_env(settings.projects)
        env |= options.airflow_env(extras, config.data_dir, runtime.metadata_dsn)
        runtime.prepare(settings)
        runtime.preflight()
        config.state.mkdir(parents=True, exist_ok=True)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.data_dir.chmod(0o1777)  # pod tasks run as their own (non-root) users, like a shared PVC
        _runtime_file(config).write_text(runtime.name)
        runtime.begin(env)  # Airflow imports in the background while Postgres starts
        phases.mark("settings_loaded")
        try:
            code = _up(args, config, runtime, settings, extras, env, phases)
        finally:
            runtime.end()
    return code


def _up(args, config: LocalConfig, runtime, settings, extras, env: dict[str, str], phases: Phases) -> int:
    from airstack.localenv import applied

    runtime.start_postgres()
    console.print(f"postgres: {_postgres_source(runtime)}, ready on 127.0.0.1:{config.postgres_port} "
                  f"({phases.mark('postgres_ready'):.1f} s)")
    if extras.any:
        _start_extras(runtime, extras, env, phases.started)
    dsn = runtime.metadata_dsn
    _create_database(dsn, "airflow")
    migrated = _already_migrated(config, runtime)
    to_import = _settings_to_import(config, runtime, settings, migrated)
    phases.mark("settings_checked")
    # A migrated database needs nothing before the services that do not depend on settings, and the
    # scheduler too when settings/local is already there. The api-server last: its launcher is the last ready.
    first = ("dag-processor", "triggerer") + (("scheduler",) if to_import is None else ()) + ("api-server",) \
        if migrated else ()
    for service in first:
        runtime.start_service(service, env)
    if first:
        phases.mark("services_forked")
    if to_import is None:
        console.print(f"database current, settings/local unchanged ({phases.now():.1f} s)")
    else:
        os.environ.update(env | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn})
        roles, actions = _migrate_and_import(config, runtime, dsn, settings, migrate=not migrated,
                                             verbose=args.verbose)
        applied.remember(_applied_file(config, runtime), to_import, dsn)
        changed = sum(a.action != "unchanged" for a in actions)
        console.print(f"database {'current' if migrated else 'migrated'}, settings/local applied "
                      f"({changed} changed of {len(actions)})"
                      + (f"; databases for {', '.join(roles)}" if roles else "")
                      + f" ({phases.mark('settings_imported'):.1f} s)")
    for service in ("dag-processor", "triggerer", "scheduler", "api-server"):  # the rest; the scheduler after settings
        runtime.start_service(service, env)
    for service in options.CELERY_PROCESSES:
        if service in extras.services:
            runtime.start_service(service, env, options.service_argv(extras, service, runtime.airflow))
    phases.mark("services_started")
    alive = lambda: runtime.check_alive((*SERVICES, *extras.services))  # noqa: E731
    follow = _LogFollower(config, (*SERVICES, *extras.services)) if args.verbose and runtime.name == "native" \
        else None
    health.wait_healthy(config.api_url, args.timeout, alive, config.log_file, on_poll=follow)
    console.print(f"Airflow is healthy ({phases.mark('healthy'):.1f} s): {config.api_url} "
                  "(no login needed locally: every user is an admin)")
    files = runtime.dag_files()
    state = ready.current(config.api_url) if files is None else \
        ready.wait_parsed(config.api_url, files, runtime.started_at("dag-processor"), args.timeout, alive,
                          runtime.parsing_idle, on_poll=follow)
    phases.mark("dags_parsed")
    for line in ready.summary(state):
        console.print(line, markup=False, highlight=False)
    phases.save(config.log_file("up-phases").with_suffix(".json"), launcher_import=runtime.import_seconds(),
                settings_imported=to_import is not None)
    console.print(f"[green]Airflow is up[/] in {phases.now():.1f} s" + (
        f", [red]with {len(state.errors)} DAG file(s) that failed to import[/] (exit code {ready.IMPORT_ERRORS_EXIT})"
        if state.errors else ""))
    return ready.IMPORT_ERRORS_EXIT if state.errors else 0


class _LogFollower:
    """--verbose: the services' new log lines, prefixed with the service, printed while `up` waits."""

    def __init__(self, config: LocalConfig, services: tuple[str, ...]) -> None:
        self.files = {s: config.log_file(s) for s in services}
        self.offsets = {s: (f.stat().st_size if f.is_file() else 0) for s, f in self.files.items()}

    def __call__(self) -> None:
        for service, path in self.files.items():
            try:
                with path.open("rb") as handle:
                    handle.seek(self.offsets[service])
                    chunk = handle.read()
            except OSError:
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[service] += len(complete)
            for line in complete.decode(errors="replace").splitlines():
                console.print(f"{service} | {line}", markup=False, highlight=False)


def _stop_all(runtime, phases: Phases | None = None) -> str:
    """Stop the services, then Postgres; what was stopped, as words."""
    stopped = runtime.stop_services(notify=console.print)
    if phases:
        phases.mark("services_stopped")
    if runtime.postgres_running():
        runtime.stop_postgres()
        stopped.append("Postgres")
    if phases:
        phases.mark("postgres_stopped")
    return f"stopped {', '.join(stopped)}" if stopped else "nothing was running"


def cmd_down(args, config: LocalConfig) -> int:
    phases = Phases()
    runtime = _recorded_runtime(config)
    with env_lock(config, "down"):
        stopped = _stop_all(runtime, phases)
    if config.logs.is_dir():
        phases.save(config.log_file("down-phases").with_suffix(".json"), **runtime.stop_seconds)
    console.print(f"{stopped}; data kept in {config.state}")
    return 0


def cmd_clean(args, config: LocalConfig) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise AirstackError("clean removes the local database and logs: run it with --yes")
        if input(f"Remove {config.state} (database, logs)? [y/N] ").strip().lower() != "y":
            return 1
    runtime = _recorded_runtime(config)
    with env_lock(config, "clean"):
        stopped = _stop_all(runtime)
        runtime.remove_all()
        ports.forget(config)
        for stamp in (_runtime_file(config), *config.state.parent.glob("migrated-*"),
                      *config.state.parent.glob("applied-*")):
            stamp.unlink(missing_ok=True)
        for folder in (config.state, config.data_dir,
                       config.pgdata.parent if not config.pgdata.is_relative_to(config.state) else None,
                       config.socket_dir):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
    console.print(f"{stopped}; removed {config.state}")
    return 0


def status_report(config: LocalConfig) -> dict:
    """What `status` shows: each service's pid (None: stopped), health and address; and the exit code."""
    runtime = _recorded_runtime(config)
    components = health.health(config.api_url)
    by_service = {v: components.get(k) for k, v in health.COMPONENT_SERVICE.items() if k != "metadatabase"}
    services = [{"service": "postgres", "pid": None, "running": runtime.postgres_running(),
                 "health": components.get("metadatabase"), "listens_on": f"127.0.0.1:{config.postgres_port}"}]
    for service in SERVICES:
        pid = runtime.pid(service)
        services.append({"service": service, "pid": pid, "running": pid is not None,
                         "health": by_service.get(service),
                         "listens_on": f"127.0.0.1:{config.api_port}" if service == "api-server" else None})
    try:
        endpoints = json.loads(_endpoints_file(config).read_text())
    except (OSError, ValueError):
        endpoints = {}
    for service in options.EXTRA_SERVICES:  # --s3, --celery, --metrics: listed while they run
        if pid := runtime.pid(service):
            services.append({"service": service, "pid": pid, "running": True, "health": None,
                             "listens_on": endpoints.get(service, "127.0.0.1")})
    running = any(s["running"] for s in services)
    healthy = all(s == "healthy" for s in components.values())
    others = [{**record, "running": not ports.port_free(record["api_port"])} for record in ports.others(config)]
    return {"root": str(config.root), "runtime": runtime.name, "api_url": config.api_url,
            "postgres": _postgres_source(runtime), "services": services, "healthy": healthy, "other_checkouts": others,
            "exit_code": 0 if healthy or not running else 1}  # 1: partly up, or up but unhealthy


def cmd_status(args, config: LocalConfig) -> int:
    report = status_report(config)
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


def cmd_logs(args, config: LocalConfig) -> int:
    runtime = _recorded_runtime(config)
    known = (*SERVICES, *options.EXTRA_SERVICES)
    services = [args.service] if args.service else [s for s in known if s in SERVICES or runtime.pid(s)]
    for service in services:
        if service not in known:
            raise AirstackError(f"unknown service {service!r}: one of {', '.join(known)}")
        console.print(f"[bold]== {service}[/]")
        print(runtime.log_tail(service, args.lines))
    return 0


def cmd_shell(args, config: LocalConfig) -> int:
    settings = _local_settings(config.root)
    runtime = _recorded_runtime(config)
    runtime.prepare(settings, build=False)
    env = config.airflow_env(keys_environment(settings.airflow.keys))
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = runtime.metadata_dsn
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    console.print("a shell with the Airflow CLI pointed at the local environment; `exit` to leave")
    return proc.run_streaming([os.environ.get("SHELL", "/bin/bash")], env=env, cwd=config.root)


def cmd_run(args, config: LocalConfig) -> int:
    from airstack.localenv.runs import follow_run

    from airstack import paths

    return follow_run(config.api_url, args.dag_id, args.timeout, console, paths.dags_folder(), as_json=args.json)


def _option_flags(p: argparse.ArgumentParser) -> None:
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
    up = sub.add_parser("up", parents=[common], help="start Airflow with the repo's DAGs and settings/local; wait "
                        f"until every DAG file is parsed (exit {ready.IMPORT_ERRORS_EXIT}: up, with import errors)")
    up.add_argument("--runtime", choices=["docker", "native"])
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health, then for the DAGs")
    _option_flags(up)
    sub.add_parser("down", parents=[common], help="stop everything, keep the data")
    restart = sub.add_parser("restart", parents=[common], help="down, then up")
    restart.add_argument("--runtime", choices=["docker", "native"])
    restart.add_argument("--timeout", type=float, default=180.0)
    _option_flags(restart)
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
    if args.verb == "restart":
        cmd_down(args, config)
        return cmd_up(args, config)
    verbs = {"up": cmd_up, "down": cmd_down, "clean": cmd_clean, "status": cmd_status, "logs": cmd_logs,
             "shell": cmd_shell, "run": cmd_run}
    return verbs[args.verb](args, config)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
