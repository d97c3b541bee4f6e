"""Embedded Postgres: the system's ``initdb``/``pg_ctl``, or the same binaries bundled in the ``pgserver`` wheel.

``initdb`` refuses to run as root; when this process is root the server runs as
``AIRSTACK_POSTGRES_RUN_AS`` (default ``postgres``, else ``nobody``) through ``runuser``,
an existing account: nothing is added to the machine. The server listens on 127.0.0.1 only,
on a free port, with a random password for TCP.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from airstack import proc
from airstack.errors import PostgresUnavailableError
from airstack.postgres import Binaries, PostgresServer
from airstack.postgres.provider import Provider

RUN_AS_ENV = "AIRSTACK_POSTGRES_RUN_AS"
_FAST_SETTINGS = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
START_ATTEMPTS = 3  # a port lost to another process between free_port() and the server's bind
NO_PROGRESS_SECONDS = 120.0  # a start whose lock file and log stay unchanged this long has failed
_CLASH_SIGNS = ("could not bind", "Address already in use")  # the server's log when its port is taken
_PORT, _STATUS = 3, 7  # postmaster.pid: line 4 is the port, line 8 the status ("starting", "ready")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_as_user(euid: int | None = None, environ: dict[str, str] | None = None) -> pwd.struct_passwd | None:
    """The unprivileged account to run Postgres as, or None when this process is not root."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return None
    environ = os.environ if environ is None else environ
    names = [environ[RUN_AS_ENV]] if environ.get(RUN_AS_ENV) else ["postgres", "nobody"]
    for name in names:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailableError(
        f"running as root and no unprivileged user ({', '.join(names)}) exists for Postgres: set {RUN_AS_ENV}"
    )


def run_as_prefix(user: pwd.struct_passwd | None) -> list[str]:
    """argv prefix that runs a Postgres binary as ``user`` (nothing when this process is not root)."""
    if user is None:
        return []
    return [proc.which("runuser", "needed to run Postgres as a non-root user (util-linux)"), "-u", user.pw_name, "--"]


def check_runnable(binaries: Binaries, user: pwd.struct_passwd | None, prefix: list[str]) -> None:
    """Fail with one line when ``user`` (the account Postgres runs as) cannot run the binaries, e.g. a venv
    under a folder only root can enter."""
    if user is None:
        return  # this process's own user: it installed them, or they are the system's
    result = proc.run([*prefix, binaries.bin_dir / "pg_ctl", "--version"], check=False)
    if result.returncode != 0:
        raise PostgresUnavailableError(
            f"user {user.pw_name} (Postgres does not run as root) cannot run {binaries.describe()}: "
            f"make every folder above it readable by that user, or set {RUN_AS_ENV} to a user who can")


@contextlib.contextmanager
def embedded(binaries: Binaries | None, provider: Provider = Provider.EMBEDDED) -> Iterator[PostgresServer]:
    """A throwaway server from ``binaries``; stopped and its data removed on exit.

    A start that loses its port to another process (the server's log says it could not bind) is
    retried on another port, in a fresh data directory, after the first attempt's is stopped and
    removed. A slow start is waited for as long as it shows progress (see :func:`_wait_ready`).
    """
    if binaries is None:
        raise PostgresUnavailableError("initdb/pg_ctl not found (install PostgreSQL, or `pip install pgserver`)")
    user = run_as_user()
    prefix = run_as_prefix(user)
    check_runnable(binaries, user, prefix)
    for attempt in range(1, START_ATTEMPTS + 1):
        with _cluster(prefix, binaries.bin_dir, user) as base:
            try:
                port = _start(prefix, binaries.bin_dir, base)
            except PortClashError as clash:
                if attempt == START_ATTEMPTS:
                    raise PostgresUnavailableError(f"embedded Postgres did not start: {clash}") from None
                continue  # this attempt's server is stopped and its folder removed on leaving _cluster
            password = secrets.token_urlsafe(24)
            _set_password_and_create_db(base, port, password)
            dsn = f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{port}/airflow"
            who = f", as user {user.pw_name}" if user else ""
            yield PostgresServer(dsn, provider, f"{binaries.describe()} on 127.0.0.1:{port}{who}")
            return


class PortClashError(PostgresUnavailableError):
    """The server could not bind its port: another process listens there (its log says so)."""


@contextlib.contextmanager
def _cluster(prefix: list[str], bin_dir: Path, user: pwd.struct_passwd | None) -> Iterator[Path]:
    """A fresh folder with a new cluster in ``data``; on exit, any server on it is stopped and the folder removed."""
    base = Path(tempfile.mkdtemp(prefix="airstack-pg-"))
    data = base / "data"
    try:
        if user is not None:
            os.chown(base, user.pw_uid, user.pw_gid)
        base.chmod(0o700)
        proc.run([*prefix, bin_dir / "initdb", "-D", data, "-U", "airflow", "-E", "UTF8", "--no-sync",
                  "--auth-local=trust", "--auth-host=scram-sha-256"], cwd=base, what="initdb")
        yield base
    finally:
        if (data / "postmaster.pid").exists():  # a server runs, or is starting: never left behind
            proc.run([*prefix, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                     cwd=base, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _start(prefix: list[str], bin_dir: Path, base: Path) -> int:
    """Start the server in ``base`` on a free loopback port, and wait until it accepts connections."""
    port = free_port()
    log_file = base / "postgres.log"
    options = f"-h 127.0.0.1 -p {port} -k {base} {_FAST_SETTINGS}"
    # -W: pg_ctl does not wait (its wait ends at a fixed time, a slow start and a failed one alike).
    result = proc.run([*prefix, bin_dir / "pg_ctl", "-D", base / "data", "-l", log_file, "-W", "-o", options,
                       "start"], cwd=base, check=False)
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        raise PostgresUnavailableError(f"embedded Postgres did not start: pg_ctl: {' '.join(tail)}")
    _wait_ready(base / "data", log_file, port)
    return port


def _wait_ready(data: Path, log_file: Path, port: int, no_progress: float | None = None) -> None:
    """Wait until the server in ``data`` is ready on ``port``, judged by facts: its lock file
    (``postmaster.pid``: its process, port and status) and its log.

    A server that ended with "could not bind" in its log lost its port (:class:`PortClashError`);
    one that ended otherwise failed. While it starts, the lock file or the log change; only when
    neither has changed for ``no_progress`` seconds is the start given up (the server is then
    stopped by the caller).
    """
    no_progress = NO_PROGRESS_SECONDS if no_progress is None else no_progress
    seen, since = None, time.monotonic()
    while True:
        lock = _lines(data / "postmaster.pid")
        log_text = log_file.read_text(errors="replace") if log_file.exists() else ""
        if len(lock) > _STATUS and lock[_STATUS].strip() == "ready":
            if lock[_PORT].strip() != str(port):  # not this start's server: never expected
                raise PostgresUnavailableError(f"embedded Postgres is ready on port {lock[_PORT]}, not {port}")
            return
        if _ended(lock, log_text):
            tail = " | ".join(log_text.strip().splitlines()[-3:])
            if any(sign in log_text for sign in _CLASH_SIGNS):
                raise PortClashError(f"port {port} is taken: {tail}")
            raise PostgresUnavailableError(f"embedded Postgres did not start: {tail}")
        state = (tuple(lock), len(log_text))
        if state != seen:
            seen, since = state, time.monotonic()
        elif time.monotonic() - since > no_progress:
            raise PostgresUnavailableError(f"embedded Postgres made no progress for {no_progress:g} s "
                                           f"(no change to its lock file or log {log_file})")
        time.sleep(0.05)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _ended(lock: list[str], log_text: str) -> bool:
    """Whether the server has stopped: its lock file names a process that is gone, or there is no lock file
    and its log says it ended (a server removes its lock file when it exits)."""
    if lock:
        try:
            os.kill(int(lock[0]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False  # another user's process (alive), or a lock file being written
        return False
    return any(word in log_text for word in ("FATAL:", "PANIC:", "database system is shut down"))


def _set_password_and_create_db(socket_dir: Path, port: int, password: str) -> None:
    """Over the private unix socket (trusted), give ``airflow`` a TCP password and create its database."""
    from psycopg2 import sql

    from airstack.postgres.sql import execute_autocommit

    local = f"postgresql://airflow@/postgres?host={socket_dir}&port={port}"
    execute_autocommit(local, sql.SQL("ALTER ROLE airflow PASSWORD {}").format(sql.Literal(password)),
                       "CREATE DATABASE airflow")
