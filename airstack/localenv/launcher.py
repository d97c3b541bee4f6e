"""The native runtime's warm parent: Airflow imported once, its services forked from here.

Four services that each import Airflow cost four imports on two cores. This process imports
Airflow once (and, while it waits, the modules the services share), then forks each service on
request, as Airflow's own components fork their workers. The api-server, whose start is the
longest, gets a launcher of its own (``python -m airstack.localenv.launcher api-server``) that
builds the API's app at once, on the other core. ``up`` starts it with the services' environment
and talks to it over stdin/stdout, one JSON object a line:

- it says ``{"ready": true, "import_seconds": …}`` once Airflow is imported;
- ``{"start": true, "argv": ["airflow", SERVICE, ...], "log": PATH}`` forks a process that runs
  Airflow's own CLI with ``argv``, detached in its own session, its output appended to PATH; the
  answer is ``{"pid": …}``;
- ``{"list_dag_files": FOLDER}`` answers ``{"files": [...]}``: the files Airflow's DAG
  processor parses there (``.airflowignore`` and safe mode applied, by Airflow itself);
- end of input: this process exits; the services live on.

A forked service ends with ``os._exit`` after Airflow's atexit handlers: the interpreter's
teardown of a large heap (2-3 s for the api-server) does nothing a service needs.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import select
import signal
import subprocess
import sys
import time

# What every service imports before its first line of work: Airflow, its configuration and its CLI.
PRELOAD = ("airflow", "airflow.__main__", "airflow.cli.cli_parser")
# What the scheduler, the DAG processor and the triggerer all import in their first seconds (measured:
# each service's sys.modules, less the above: 544 modules shared by three or more, 1.5 s to import,
# covered by these entry points). Imported once, while the launcher waits, before it forks them.
SHARED = (
    "airflow.models.dag", "airflow.models.dagrun", "airflow.models.taskinstance", "airflow.models.serialized_dag",
    "airflow.models.trigger", "airflow.models.xcom", "airflow.models.variable", "airflow.models.pool",
    "airflow.models.backfill", "airflow.models.deadline", "airflow.serialization.serialized_objects",
    "airflow.utils.db", "airflow.ti_deps.dependencies_deps", "airflow.sdk.execution_time.supervisor",
    "airflow.jobs.base_job_runner", "airflow.dag_processing.dagbag", "airflow.utils.code_utils", "airflow.api_fastapi",
    "airflow.executors.workloads", "airflow.partition_mappers", "airflow.timetables", "airflow.triggers",
    "airflow.callbacks", "airflow.assets", "airflow.migrations", "airflow.observability", "alembic.command",
    "alembic.migration", "alembic.script", "alembic.autogenerate", "alembic.operations", "cryptography.fernet",
    "cryptography.x509", "jwt", "pygments.lexers.python", "pygments.formatters", "fastapi", "fastapi.security",
    "uvicorn", "anyio.to_thread", "asgiref.sync", "argcomplete", "daemon",
    # The DAG processor and the triggerer serve the Execution API in process (py-spy: 0.85 s each).
    "airflow.api_fastapi.execution_api.app", "airflow.api_fastapi.execution_api.routes",
)
# The api-server's start is mostly building its app (FastAPI analyses each endpoint as it is declared). Its
# own launcher builds it before it is ready: importing this module builds the app, as uvicorn would in the
# api-server (which then finds it built). Building it needs no database.
API_APP = ("airflow.api_fastapi.main",)


def _import_all(modules: tuple[str, ...], optional: bool = False) -> None:
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            if not optional:
                raise
            # another Airflow version: the service imports what it needs itself


def _run_service(argv: list[str], log: str, titled: int) -> None:
    """In the forked child: become the service; close ``titled`` once it carries the service's name (the pid
    file's checks look for it). Never returns."""
    code = 1
    try:
        os.setsid()  # its own session and process group, like proc.start's children
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(devnull)  # fds 0 and 1 were the pipes to `up`: replaced, so closed here
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        from setproctitle import setproctitle

        setproctitle(" ".join(argv))  # what `ps` and the pid checks see: `airflow scheduler`
        os.close(titled)
        sys.argv = ["airflow", *argv[1:]]
        from airstack import airflow_compat

        airflow_compat.run_cli()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - a service's crash goes to its log, then the exit code says it
        import traceback

        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # noqa: SLF001 - Airflow's and logging's handlers, then no teardown
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _answer(channel, message: dict) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _dag_files(folder: str) -> list[str]:
    from airflow.configuration import conf

    from airstack import airflow_compat

    safe_mode = conf.getboolean("core", "dag_discovery_safe_mode", fallback=True)
    return sorted(os.path.relpath(p, folder) for p in airflow_compat.dag_files(folder, safe_mode=safe_mode))


class Launcher:
    """``up``'s side of the conversation: start the warm parent, ask it to fork services."""

    def __init__(self, env: dict[str, str], log_file, cwd, only: str | None = None) -> None:
        """``only="api-server"``: a launcher that builds the API's app before it says it is ready."""
        from airstack import proc

        self.log_file = log_file
        self.process = proc.start([sys.executable, "-m", "airstack.localenv.launcher", *([only] if only else [])],
                                  log_file=log_file, env=env, cwd=cwd, talk=True)
        self.import_seconds: float | None = None

    def _receive(self, timeout: float) -> dict:
        import selectors

        from airstack.errors import LocalEnvError
        from airstack.localenv.health import tail

        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            line = self.process.stdout.readline() if selector.select(timeout) else ""
        if not line:
            self.close()
            raise LocalEnvError(f"Airflow could not be imported to start the services; last lines of "
                                f"{self.log_file}:\n{tail(self.log_file)}")
        return json.loads(line)

    def _ask(self, request: dict, timeout: float = 120) -> dict:
        if self.import_seconds is None:
            self.import_seconds = self._receive(timeout)["import_seconds"]
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._receive(timeout)

    def fork(self, argv: list[str], log_file) -> int:
        """Start a service (Airflow's CLI ``argv``); its pid."""
        return self._ask({"start": True, "argv": [str(a) for a in argv], "log": str(log_file)})["pid"]

    def dag_files(self, folder) -> list[str]:
        """The files Airflow's DAG processor parses in ``folder``, relative to it."""
        return self._ask({"list_dag_files": str(folder)})["files"]

    def close(self) -> None:
        """End the conversation; the warm parent exits (its services do not)."""
        from airstack import proc

        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                proc.stop(self.process)
        self.process.stdout.close()


class _Requests:
    """Request lines from ``up`` on fd 0, readable without blocking (Python's buffered stdin hides what
    it has already read from select())."""

    def __init__(self) -> None:
        self.buffer, self.closed = b"", False

    def _fill(self, timeout: float | None) -> None:
        if not self.closed and select.select([0], [], [], timeout)[0]:
            chunk = os.read(0, 65536)
            self.buffer += chunk
            self.closed = not chunk

    def waiting(self) -> bool:
        self._fill(0)
        return b"\n" in self.buffer

    def next(self) -> dict | None:
        while b"\n" not in self.buffer and not self.closed:
            self._fill(None)
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def _fork(channel, request: dict) -> None:
    gc.freeze()  # the heap so far stays shared with the fork: no copy-on-write from its collector
    wait_for, titled = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(wait_for)
        channel.close()
        _run_service(request["argv"], request["log"], titled)
    os.close(titled)
    os.read(wait_for, 1)  # end of file: the child has its name (or has died)
    os.close(wait_for)
    _answer(channel, {"pid": pid})


def _serve(channel, request: dict) -> None:
    if "list_dag_files" in request:
        _answer(channel, {"files": _dag_files(request["list_dag_files"])})
    else:
        _fork(channel, request)


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    # The answers get a descriptor of their own; fd 1 joins the log (Airflow logs to stdout).
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _import_all(PRELOAD)
    if argv == ["api-server"]:  # a launcher of its own for the api-server: its app first, then serve
        _import_all(API_APP)
    gc.collect()
    _answer(channel, {"ready": True, "import_seconds": round(time.perf_counter() - started, 3)})
    requests = _Requests()
    # Idle until asked: import what the services share, one module at a time; a service asked for meanwhile
    # waits for the rest of them. Nothing is imported once `up` is done.
    for module in () if argv else SHARED:
        if requests.waiting():
            _import_all(SHARED, optional=True)
            break
        if requests.closed:
            break
        _import_all((module,), optional=True)
    while (request := requests.next()) is not None:
        _serve(channel, request)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no teardown of Airflow's heap (a second or more) for `up` to wait on
