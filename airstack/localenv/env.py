"""The local environment as one object: :class:`LocalEnv` holds `up`, `down`, `clean`, `status`, `logs`,
`shell` and `run`. The CLI (:mod:`.main`) only parses arguments and calls it."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from airstack import proc
from airstack.errors import AirstackError, LocalEnvError
from airstack.localenv import database, health, ports, ready
from airstack.localenv import options
from airstack.localenv.config import SERVICES, LocalConfig, keys_environment
from airstack.localenv.runtime import Runtime, choose_runtime, recorded_runtime, runtime_file
from airstack.postgres import sql


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


class LogFollower:
    """--verbose: the services' new log lines, prefixed with the service, printed while `up` waits."""

    def __init__(self, config: LocalConfig, services: tuple[str, ...], console: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=True)
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
                self.console.print(f"{service} | {line}", markup=False, highlight=False)


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


def local_settings(root: Path, config: LocalConfig | None = None):
    """settings/local. Its Postgres connections at 127.0.0.1:5433 mean this env's Postgres: in a checkout
    on other ports (ports.py) they follow this checkout's Postgres port."""
    from airstack.settings import store

    settings = store.load(root, "local")
    default = ports.DEFAULTS["postgres_port"]
    if config is None or config.postgres_port == default:
        return settings
    connections = [c.model_copy(update={"port": config.postgres_port})
                   if c.type == "postgres" and c.host in database.LOCAL_HOSTS and c.port == default else c
                   for c in settings.airflow.connections]
    return settings.model_copy(update={"airflow": settings.airflow.model_copy(update={"connections": connections})})


def endpoints_file(config: LocalConfig) -> Path:
    """Where the options' servers listen (for `status`)."""
    return config.run / "options.json"


class LocalEnv:
    """This checkout's local Airflow. Prints its progress on ``console``; every call returns an exit code."""

    def __init__(self, config: LocalConfig, console: Console, verbose: bool = False) -> None:
        self.config, self.console, self.verbose = config, console, verbose

    # ---------------------------------------------------------------------------- up --
    def up(self, runtime: str | None = None, *, s3: bool = False, celery: bool = False, metrics: bool = False,
           timeout: float = 180.0) -> int:
        """Start (or check) everything and wait until every DAG file is parsed; exit 3 with import errors."""
        phases = Phases()
        config = self.config = ports.claim(self.config)
        settings = local_settings(config.root, config)
        extras = options.resolve(config.root, settings, s3=s3, celery=celery, metrics=metrics)
        chosen, why = choose_runtime(runtime, config, extras)
        self.console.print(f"runtime: {why}")
        with env_lock(config, "up"):
            env = config.airflow_env(keys_environment(settings.airflow.keys)) | chosen.pods_env(settings.projects)
            env |= options.airflow_env(extras, config.data_dir, chosen.metadata_dsn)
            chosen.prepare(settings)
            chosen.preflight()
            config.state.mkdir(parents=True, exist_ok=True)
            config.data_dir.mkdir(parents=True, exist_ok=True)
            config.data_dir.chmod(0o1777)  # pod tasks run as their own (non-root) users, like a shared PVC
            runtime_file(config).write_text(chosen.name)
            chosen.begin(env)  # Airflow imports in the background while Postgres starts
            phases.mark("settings_loaded")
            try:
                return _Up(self, chosen, settings, extras, env, phases).run(timeout)
            finally:
                chosen.end()

    # -------------------------------------------------------------------- down, clean --
    def _stop_all(self, runtime: Runtime, phases: Phases | None = None) -> str:
        """Stop the services, then Postgres; what was stopped, as words."""
        stopped = runtime.stop_services(notify=self.console.print)
        if phases:
            phases.mark("services_stopped")
        if runtime.postgres_running():
            runtime.stop_postgres()
            stopped.append("Postgres")
        if phases:
            phases.mark("postgres_stopped")
        return f"stopped {', '.join(stopped)}" if stopped else "nothing was running"

    def down(self) -> int:
        phases = Phases()
        runtime = recorded_runtime(self.config)
        with env_lock(self.config, "down"):
            stopped = self._stop_all(runtime, phases)
        if self.config.logs.is_dir():
            phases.save(self.config.log_file("down-phases").with_suffix(".json"), **runtime.stop_seconds)
        self.console.print(f"{stopped}; data kept in {self.config.state}")
        return 0

    def clean(self, yes: bool) -> int:
        from airstack.cli import confirm

        config = self.config
        if not confirm(f"Remove {config.state} (database, logs)?", yes=yes, protected=True,
                       hint="run it with --yes"):  # `clean` cannot be undone: it always asks
            return 1
        runtime = recorded_runtime(config)
        with env_lock(config, "clean"):
            stopped = self._stop_all(runtime)
            runtime.remove_all()
            ports.forget(config)
            for stamp in (runtime_file(config), *config.state.parent.glob("migrated-*"),
                          *config.state.parent.glob("applied-*")):
                stamp.unlink(missing_ok=True)
            for folder in (config.state, config.data_dir,
                           config.pgdata.parent if not config.pgdata.is_relative_to(config.state) else None,
                           config.socket_dir):
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
        self.console.print(f"{stopped}; removed {config.state}")
        return 0

    # ------------------------------------------------------------- status, logs, shell --
    def status(self) -> dict:
        """Each service's pid (None: stopped), health and address; other checkouts' envs; and the exit code."""
        config, runtime = self.config, recorded_runtime(self.config)
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
            endpoints = json.loads(endpoints_file(config).read_text())
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
                "postgres": runtime.postgres_source, "services": services, "healthy": healthy,
                "other_checkouts": others,
                "exit_code": 0 if healthy or not running else 1}  # 1: partly up, or up but unhealthy

    def logs(self, service: str | None, lines: int) -> int:
        runtime = recorded_runtime(self.config)
        known = (*SERVICES, *options.EXTRA_SERVICES)
        services = [service] if service else [s for s in known if s in SERVICES or runtime.pid(s)]
        for name in services:
            if name not in known:
                raise AirstackError(f"unknown service {name!r}: one of {', '.join(known)}")
            self.console.print(f"[bold]== {name}[/]")
            print(runtime.log_tail(name, lines))
        return 0

    def shell(self) -> int:
        """A shell with the Airflow CLI pointed at the env (its environment passed explicitly)."""
        settings = local_settings(self.config.root)
        runtime = recorded_runtime(self.config)
        runtime.prepare(settings, build=False)
        env = self.config.airflow_env(keys_environment(settings.airflow.keys))
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = runtime.metadata_dsn
        env["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        self.console.print("a shell with the Airflow CLI pointed at the local environment; `exit` to leave")
        return proc.run_streaming([os.environ.get("SHELL", "/bin/bash")], env=env, cwd=self.config.root)

    def run(self, dag_id: str, timeout: float, as_json: bool) -> int:
        """Trigger a run of ``dag_id`` through the REST API and follow it; the exit code from its state."""
        from airstack import paths
        from airstack.localenv.runs import follow_run

        return follow_run(self.config.api_url, dag_id, timeout, self.console, paths.dags_folder(), as_json=as_json)


class _Up:
    """One `up` of a runtime that has begun: Postgres, the options, the database, the services, the waits."""

    def __init__(self, env: LocalEnv, runtime: Runtime, settings, extras: options.Options, airflow_env: dict[str, str],
                 phases: Phases) -> None:
        self.local, self.runtime, self.settings, self.extras = env, runtime, settings, extras
        self.env, self.phases = airflow_env, phases
        self.config, self.console = env.config, env.console

    def run(self, timeout: float) -> int:
        runtime, config, phases = self.runtime, self.config, self.phases
        runtime.start_postgres()
        self.console.print(f"postgres: {runtime.postgres_source}, ready on 127.0.0.1:{config.postgres_port} "
                           f"({phases.mark('postgres_ready'):.1f} s)")
        if self.extras.any:
            self.start_extras()
        self.database()
        for service in ("dag-processor", "triggerer", "scheduler", "api-server"):  # the rest; scheduler after settings
            runtime.start_service(service, self.env)
        for service in options.CELERY_PROCESSES:
            if service in self.extras.services:
                runtime.start_service(service, self.env, options.service_argv(self.extras, service, runtime.airflow))
        phases.mark("services_started")
        return self.wait(timeout)

    def start_extras(self) -> None:
        """The options' servers that Airflow needs from its first task: S3 (with its buckets), Redis, metrics."""
        runtime, extras = self.runtime, self.extras
        for port, service, variable in options.listen_ports(extras):
            if not runtime.pid(service) and not ports.port_free(port):
                raise LocalEnvError(ports.taken(runtime.config, port, service, variable))
        redis = proc.which("redis-server", "install Redis for --celery (Debian: apt-get install redis-server)") \
            if extras.celery else None
        for service in options.SERVERS:
            if service in extras.services:
                runtime.start_service(service, self.env, options.service_argv(extras, service, runtime.airflow, redis))
        if extras.s3:
            options.ensure_buckets(extras.s3)
        endpoints_file(runtime.config).write_text(json.dumps(extras.endpoints()))
        for line in extras.describe():
            self.console.print(line)
        self.console.print(f"options started ({self.phases.now():.1f} s)")

    def database(self) -> None:
        """The metadata database made, migrated and given settings/local, unless it already is. A migrated database
        needs nothing before the services that do not depend on settings (and the scheduler too when settings/local
        is already there): they start first, the api-server last (its launcher is the last ready)."""
        from airstack.localenv import applied

        runtime, config, phases = self.runtime, self.config, self.phases
        sql.ensure_database(runtime.metadata_dsn, "airflow")
        migrated = database.already_migrated(config, runtime)
        to_import = database.settings_to_import(config, runtime, self.settings, migrated)
        self.imported = to_import is not None
        phases.mark("settings_checked")
        first = ("dag-processor", "triggerer") + (("scheduler",) if to_import is None else ()) + ("api-server",) \
            if migrated else ()
        for service in first:
            runtime.start_service(service, self.env)
        if first:
            phases.mark("services_forked")
        if to_import is None:
            self.console.print(f"database current, settings/local unchanged ({phases.now():.1f} s)")
            return
        roles, actions = database.migrate_and_import(config, runtime, self.settings, self.env, migrate=not migrated,
                                                     verbose=self.local.verbose, console=self.console)
        applied.remember(database.applied_file(config, runtime), to_import, runtime.metadata_dsn)
        changed = sum(a.action != "unchanged" for a in actions)
        self.console.print(f"database {'current' if migrated else 'migrated'}, settings/local applied "
                           f"({changed} changed of {len(actions)})"
                           + (f"; databases for {', '.join(roles)}" if roles else "")
                           + f" ({phases.mark('settings_imported'):.1f} s)")

    def wait(self, timeout: float) -> int:
        """Healthy, then every DAG file parsed; the summary, and the exit code."""
        runtime, config, phases, services = self.runtime, self.config, self.phases, (*SERVICES, *self.extras.services)
        alive = lambda: runtime.check_alive(services)  # noqa: E731
        follow = LogFollower(config, services, self.console) if self.local.verbose and runtime.name == "native" \
            else None
        health.wait_healthy(config.api_url, timeout, alive, config.log_file, on_poll=follow)
        self.console.print(f"Airflow is healthy ({phases.mark('healthy'):.1f} s): {config.api_url} "
                           "(no login needed locally: every user is an admin)")
        files = runtime.dag_files()
        state = ready.current(config.api_url) if files is None else \
            ready.wait_parsed(config.api_url, files, runtime.started_at("dag-processor"), timeout, alive,
                              runtime.parsing_idle, runtime.parse_dag_files, on_poll=follow)
        phases.mark("dags_parsed")
        for line in ready.summary(state):
            self.console.print(line, markup=False, highlight=False)
        phases.save(config.log_file("up-phases").with_suffix(".json"), launcher_import=runtime.import_seconds(),
                    settings_imported=self.imported)
        self.console.print(f"[green]Airflow is up[/] in {phases.now():.1f} s" + (
            f", [red]with {len(state.errors)} DAG file(s) that failed to import[/] (exit code "
            f"{ready.IMPORT_ERRORS_EXIT})" if state.errors else ""))
        return ready.IMPORT_ERRORS_EXIT if state.errors else 0
