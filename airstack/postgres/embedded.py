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
from collections.abc import Iterator
from pathlib import Path

from airstack import proc
from airstack.errors import CommandFailedError, PostgresUnavailableError
from airstack.postgres import Binaries, PostgresServer
from airstack.postgres.provider import Provider

RUN_AS_ENV = "AIRSTACK_POSTGRES_RUN_AS"
_FAST_SETTINGS = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"


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
    """A throwaway server from ``binaries``; stopped and its data removed on exit."""
    if binaries is None:
        raise PostgresUnavailableError("initdb/pg_ctl not found (install PostgreSQL, or `pip install pgserver`)")
    bin_dir = binaries.bin_dir
    user = run_as_user()
    prefix = run_as_prefix(user)
    check_runnable(binaries, user, prefix)
    base = Path(tempfile.mkdtemp(prefix="airstack-pg-"))
    data = base / "data"
    started = False
    try:
        if user is not None:
            os.chown(base, user.pw_uid, user.pw_gid)
        base.chmod(0o700)
        proc.run([*prefix, bin_dir / "initdb", "-D", data, "-U", "airflow", "-E", "UTF8", "--no-sync",
                  "--auth-local=trust", "--auth-host=scram-sha-256"], cwd=base, what="initdb")
        port = _start(prefix, bin_dir, base, data)
        started = True
        password = secrets.token_urlsafe(24)
        _set_password_and_create_db(base, port, password)
        dsn = f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{port}/airflow"
        who = f", as user {user.pw_name}" if user else ""
        yield PostgresServer(dsn, provider, f"{binaries.describe()} on 127.0.0.1:{port}{who}")
    finally:
        if started:
            proc.run([*prefix, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                     cwd=base, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _start(prefix: list[str], bin_dir: Path, base: Path, data: Path, attempts: int = 3) -> int:
    """Start on a free loopback port; retry with a new port if another process took it meanwhile."""
    for attempt in range(attempts):
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {base} {_FAST_SETTINGS}"
        try:
            proc.run([*prefix, bin_dir / "pg_ctl", "-D", data, "-l", base / "postgres.log", "-w", "-t", "30",
                      "-o", options, "start"], cwd=base, what="pg_ctl start")
            return port
        except CommandFailedError:
            if attempt == attempts - 1:
                log_tail = (base / "postgres.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise PostgresUnavailableError("embedded Postgres did not start: " + " | ".join(log_tail)) from None
    raise AssertionError("unreachable")


def _set_password_and_create_db(socket_dir: Path, port: int, password: str) -> None:
    """Over the private unix socket (trusted), give ``airflow`` a TCP password and create its database."""
    from psycopg2 import sql

    from airstack.postgres.sql import execute_autocommit

    local = f"postgresql://airflow@/postgres?host={socket_dir}&port={port}"
    execute_autocommit(local, sql.SQL("ALTER ROLE airflow PASSWORD {}").format(sql.Literal(password)),
                       "CREATE DATABASE airflow")
