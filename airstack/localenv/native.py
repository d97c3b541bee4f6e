"""The native runtime: Postgres from the PostgreSQL binaries, Airflow services as processes.

The binaries are the system's, else those bundled in the ``pgserver`` wheel (installed with the
dev lock): the same choice as the tests' (:func:`airstack.postgres.find_binaries`).

Everything lives in ``.airstack/local/native/`` (gitignored): Postgres' data, Airflow's home,
a log and a pidfile per service. Postgres listens on 127.0.0.1 (for connections such as
``warehouse_db``) and on a private unix socket (the metadata DB, trusted there). When this
process is root, Postgres runs as an unprivileged user (initdb refuses root).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from airstack import proc
from airstack.errors import LocalEnvError, PostgresUnavailableError
from airstack.localenv.config import SERVICES, LocalConfig
from airstack.localenv.options import CELERY_PROCESSES, MARKERS, SERVERS
from airstack.localenv.health import tail
from airstack.localenv.ports import port_free, taken
from airstack.postgres import Binaries, find_binaries
from airstack.postgres.embedded import check_runnable, run_as_prefix, run_as_user


def _alive(pid: int, marker: str) -> bool:
    """The process exists, is not a zombie, and its command line holds ``marker`` (no pid reuse)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    # Airflow retitles some processes (`airflow api_server -- host:...`).
    return state != "Z" and (marker in cmdline or marker.replace("-", "_") in cmdline)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _ask_to_end(pids: dict[str, int]) -> dict[str, int]:
    """SIGTERM each service's main process: it stops its own children its own way (running tasks finish).
    The triggerer's runner goes alone first (the triggerer sees it end and exits at once; signalled too,
    Airflow 3.3's triggerer may wait out a 10 s escalation timer for a runner that has already exited).
    Returns the services to signal only if they have not ended on their own within a second."""
    later = {}
    for service, pid in pids.items():
        runners = _live_children(pid) if service == "triggerer" else []
        for child in runners:
            _signal(child, signal.SIGTERM)
        if runners:
            later[service] = pid
        else:
            _signal(pid, signal.SIGTERM)
    return later


def _live_children(pid: int) -> list[int]:
    """The children of ``pid`` (forked by any of its threads) that are neither gone nor zombies."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue
    return [int(c) for c in children if _alive(int(c), "")]


class NativeRuntime:
    """The :class:`~airstack.localenv.runtime.Runtime` of processes on this machine."""

    name = "native"

    def __init__(self, config: LocalConfig, binaries: Binaries | None = None) -> None:
        self.config = config
        self.binaries = binaries or find_binaries()
        self.user = run_as_user()
        self.airflow = str(Path(sys.executable).parent / "airflow")
        self.launcher = self.api_launcher = None
        self.env: dict[str, str] = {}  # the services' environment (from `begin`)
        self.stop_seconds: dict[str, float] = {}  # per service, how long it took to end (`down` keeps them)

    def begin(self, env: dict[str, str]) -> None:
        """Import Airflow once, in the background, for the services to fork from (see launcher.py)."""
        from airstack.localenv.launcher import Launcher

        self.config.logs.mkdir(parents=True, exist_ok=True)
        self.env = env
        if all(self.pid(s) for s in SERVICES):
            return  # all up already: nothing to fork (and their DAGs were parsed when they came up)
        self.launcher = Launcher(env, self.config.log_file("launcher"), self.config.root)
        if not self.pid("api-server"):
            # The api-server's start is the longest (building its app): a second launcher does it at once, on
            # the other core, while the first imports what the other services share.
            self.api_launcher = Launcher(env, self.config.log_file("launcher-api"), self.config.root, "api-server")

    def end(self) -> None:
        for launcher in (self.launcher, self.api_launcher):
            if launcher is not None:
                launcher.close()
        self.launcher = self.api_launcher = None

    def import_seconds(self) -> dict[str, float | None]:
        launchers = {"services": self.launcher, "api-server": self.api_launcher}
        return {name: launcher.import_seconds for name, launcher in launchers.items() if launcher}

    def started_at(self, service: str) -> datetime:
        """When the service's process started (a second early: the kernel counts from a whole-second boot time)."""
        pid = self.pid(service)
        if pid is None:
            return datetime.now(timezone.utc)
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK") - 1, timezone.utc)

    def parsing_idle(self) -> bool | None:
        """Whether the DAG processor parses nothing right now (it forks a process per file it parses)."""
        pid = self.pid("dag-processor")
        return pid is not None and not _live_children(pid)

    def dag_files(self) -> list[str] | None:
        """The DAG folder's files that the DAG processor parses (Airflow's own listing)."""
        return self.launcher.dag_files(self.config.root / "dags") if self.launcher else None

    def parse_dag_files(self, files: list[str]) -> dict[str, dict]:
        """Each file parsed once by this environment's Airflow, with the services' configuration (filecheck.py)."""
        from airstack.localenv import filecheck

        result = proc.run([sys.executable, "-m", "airstack.localenv.filecheck", self.config.root / "dags", *files],
                          env=self.env, cwd=self.config.root, check=False, timeout=600, what="parsing DAG files")
        found = filecheck.answer(result.stdout)
        if found is None:
            raise LocalEnvError(f"could not parse {', '.join(files)} with Airflow (exit {result.returncode}): "
                                f"{result.stderr.strip()[-500:]}")
        return found

    # --------------------------------------------------------------------- postgres --
    @property
    def postgres_source(self) -> str:
        """Which Postgres this runtime runs (for `up` and `status`)."""
        return self.binaries.describe() if self.binaries else "no PostgreSQL binaries found"

    def _pg(self, *args, check: bool = True, timeout: float = 60):
        if self.binaries is None:
            raise PostgresUnavailableError("the native runtime needs PostgreSQL server binaries (initdb, pg_ctl): "
                                           "`pip install pgserver` (in the dev lock), install PostgreSQL, "
                                           "or use `--runtime docker`")
        argv = [*run_as_prefix(self.user), self.binaries.bin_dir / args[0], *args[1:]]
        return proc.run(argv, cwd=self.config.pgdata.parent, check=check, timeout=timeout, what=args[0])

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        path.chmod(0o700)

    def postgres_running(self) -> bool:
        data = self.config.pgdata / "data"
        return (data / "PG_VERSION").is_file() and self._pg("pg_ctl", "-D", data, "status", check=False).returncode == 0

    def start_postgres(self) -> None:
        data = self.config.pgdata / "data"
        if self.postgres_running():
            return
        if self.binaries is not None:
            check_runnable(self.binaries, self.user, run_as_prefix(self.user))
        self.config.state.mkdir(parents=True, exist_ok=True)
        self._own(self.config.pgdata)
        self._own(self.config.socket_dir)
        if (data / "PG_VERSION").is_file():
            self._check_data_version(data)
        else:
            self._pg("initdb", "-D", data, "-U", "airflow", "-E", "UTF8", "--auth-local=trust",
                     "--auth-host=scram-sha-256")
        port = self.config.postgres_port
        if not port_free(port):
            raise LocalEnvError(taken(self.config, port, "the local Postgres", "AIRSTACK_LOCAL_POSTGRES_PORT"))
        log = self.config.pgdata / "postgres.log"
        options = f"-h 127.0.0.1 -p {port} -k {self.config.socket_dir}"
        result = self._pg("pg_ctl", "-D", data, "-l", log, "-w", "-t", "30", "-o", options, "start", check=False)
        if result.returncode != 0:
            raise LocalEnvError(f"Postgres did not start; last lines of {log}:\n{tail(log)}")

    def _check_data_version(self, data: Path) -> None:
        """A data folder made by another major version (the binaries changed since) is one clear line."""
        made_by = (data / "PG_VERSION").read_text().strip()
        # "pg_ctl (PostgreSQL) 16.2", "pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        found = self._pg("pg_ctl", "--version").stdout.split(")", 1)[-1].split()[0]
        if found.split(".")[0] != made_by:
            raise LocalEnvError(f"the local database was made by PostgreSQL {made_by} and this runtime found "
                                f"{self.postgres_source}, version {found}: `nox -s clean` to start over (it "
                                "removes the local data), or put PostgreSQL " + made_by + "'s binaries on PATH")

    def stop_postgres(self) -> None:
        data = self.config.pgdata / "data"
        if self.postgres_running():
            self._pg("pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "30", "stop", check=False)

    def preflight(self) -> None:
        """Fail before starting anything when a port the env needs is taken by something else."""
        wanted = []
        if not self.postgres_running():
            wanted.append((self.config.postgres_port, "Postgres", "AIRSTACK_LOCAL_POSTGRES_PORT"))
        if not self.pid("api-server"):
            wanted.append((self.config.api_port, "the api-server", "AIRSTACK_LOCAL_API_PORT"))
        for port, who, variable in wanted:
            if not port_free(port):
                raise LocalEnvError(taken(self.config, port, who, variable))

    # ---------------------------------------------------------------------- services --
    @property
    def metadata_dsn(self) -> str:
        return self.config.metadata_dsn

    def prepare(self, settings, build: bool = True) -> None:
        """Nothing to prepare: the services run from this environment's own Airflow."""

    def pods_env(self, projects: dict) -> dict[str, str]:
        """Pod tasks as containers on the host's network, so they reach 127.0.0.1 like the services; the
        services import the local settings that make them so (``pod_policy``)."""
        from airstack.localenv import pod_policy

        return self.config.pods_env(projects, network="host") | {
            "PYTHONPATH": pod_policy.python_path(pod_policy.SETTINGS_FOLDER, pod_policy.TOOLING_ROOT)}

    def log_tail(self, service: str, lines: int) -> str:
        return tail(self.config.log_file(service), lines)

    def remove_all(self) -> None:
        """The data lives in folders (`clean` removes them); pod containers kept for inspection go here."""
        from airstack.docker_client import optional_client

        docker = optional_client()
        if docker is None:
            return  # no daemon: no pod ran
        try:
            docker.remove_containers(f"io.airstack.env={self.config.env_id}")
        finally:
            docker.close()

    def pid(self, service: str) -> int | str | None:
        try:
            pid = int(self.config.pid_file(service).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid, MARKERS.get(service, service)) else None

    def start_service(self, service: str, env: dict[str, str], argv: list[str] | None = None) -> None:
        """Start an Airflow service (or, with ``argv``, one of the options' servers) unless it runs."""
        if self.pid(service):
            return
        if service == "api-server" and not port_free(self.config.api_port):
            raise LocalEnvError(taken(self.config, self.config.api_port, "the api-server", "AIRSTACK_LOCAL_API_PORT"))
        for folder in (self.config.logs, self.config.run):
            folder.mkdir(parents=True, exist_ok=True)
        log = self.config.log_file(service)
        launcher = self.api_launcher if service == "api-server" and self.api_launcher else self.launcher
        if argv is None and launcher is not None:  # an Airflow service: forked warm
            pid = launcher.fork(self.config.service_argv(self.airflow, service), log)
        else:
            pid = proc.start(argv or self.config.service_argv(self.airflow, service), log_file=log, env=env,
                             cwd=self.config.root).pid
        self.config.pid_file(service).write_text(f"{pid}\n")

    def check_alive(self, services: Iterable[str] = SERVICES) -> None:
        """Raise with the service's last log lines as soon as one of them has died."""
        for service in services:
            if self.pid(service) is None:
                raise LocalEnvError(f"{service} exited; last lines of {self.config.log_file(service)}:\n"
                                    f"{tail(self.config.log_file(service))}")
        if not self.postgres_running():
            raise LocalEnvError(f"Postgres is not running; last lines of {self.config.pgdata / 'postgres.log'}:\n"
                                f"{tail(self.config.pgdata / 'postgres.log')}")

    def stop_services(self, timeout: float = 20.0, notify: Callable[[str], object] | None = None) -> list[str]:
        """In the order that loses nothing: the scheduler and the Celery processes (running tasks finish
        and report through the api-server's Execution API), the triggerer and the DAG processor; then the
        api-server; then the options' servers. ``notify`` hears what it waits for."""
        first = ("scheduler", *CELERY_PROCESSES, "triggerer", "dag-processor")
        return self._stop(first, timeout, notify) + self._stop(("api-server",), timeout) + \
            self._stop(SERVERS, timeout)

    def _stop(self, services: tuple[str, ...], timeout: float, notify=None) -> list[str]:
        pids = {s: pid for s in services if (pid := self.pid(s))}
        later = _ask_to_end(pids)
        started = time.monotonic()
        while (now := time.monotonic()) < started + timeout:
            for service in pids.keys() - self.stop_seconds.keys():
                if not self.pid(service):
                    self.stop_seconds[service] = round(now - started, 3)
            if self.stop_seconds.keys() >= pids.keys():
                break
            if now > started + 1 and (later or notify):  # a second on: nudge, and say what it waits for
                for pid in later.values():
                    _signal(pid, signal.SIGTERM)
                later = {}
                busy = [s for s in ("scheduler", *CELERY_PROCESSES) if s in pids.keys() - self.stop_seconds.keys()]
                if busy and notify:
                    notify(f"waiting for the running tasks of {', '.join(busy)} to finish (at most {timeout:g} s; "
                           "then they are stopped)")
                notify = None
            time.sleep(0.05)
        for pid in pids.values():
            _signal_group(pid, signal.SIGKILL)  # each service leads its own process group: what is left in it
        for service in services:
            self.config.pid_file(service).unlink(missing_ok=True)
        return list(pids)
