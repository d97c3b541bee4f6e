"""Postgres for tests: one context manager, four providers (see :mod:`.provider`)."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from airstack.postgres.provider import DSN_ENV, PROVIDER_ENV, Choice, Probes, Provider, choose_provider

__all__ = ["PostgresServer", "Provider", "Probes", "choose_provider", "find_bin_dir", "probe", "postgres_server"]


@dataclass(frozen=True)
class PostgresServer:
    """A running Postgres. ``dsn`` is a SQLAlchemy URL (``postgresql+psycopg2://…``)."""

    dsn: str
    provider: Provider
    detail: str

    @property
    def redacted_dsn(self) -> str:
        return redact_dsn(self.dsn)


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (for headers and logs)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def find_bin_dir(path: str | None = None, extra_globs: tuple[str, ...] = ("/usr/lib/postgresql/*/bin",)) -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's versioned folders, newest first."""
    initdb = shutil.which("initdb", path=path)
    if initdb and shutil.which("pg_ctl", path=path):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        (Path(p) for pattern in extra_globs for p in glob.glob(pattern)),
        key=lambda p: [int(x) if x.isdigit() else x for x in p.parent.name.split(".")],
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def probe(environ: dict[str, str] | None = None, check_docker: bool = True) -> Probes:
    """Look at this machine and the environment (the I/O half of the provider choice)."""
    environ = dict(os.environ if environ is None else environ)
    requested = environ.get(PROVIDER_ENV) or None
    docker_ok, docker_reason = False, "not probed"
    if check_docker:
        from airstack.docker_client import docker_status

        docker_ok, docker_reason = docker_status()
    return Probes(
        requested=requested,
        external_dsn=environ.get(DSN_ENV) or None,
        docker=docker_ok,
        docker_reason=docker_reason,
        bin_dir=find_bin_dir(environ.get("PATH")),
        pgserver=importlib.util.find_spec("pgserver") is not None,
    )


@contextlib.contextmanager
def postgres_server(choice: Choice, probes: Probes) -> Iterator[PostgresServer]:
    """Start (or connect to) the chosen Postgres; stop it and remove its data on exit."""
    if choice.provider is Provider.EXTERNAL:
        from airstack.postgres.external import external

        yield external(probes.external_dsn or "")
    elif choice.provider is Provider.CONTAINER:
        from airstack.postgres.container import container

        with container() as server:
            yield server
    elif choice.provider is Provider.EMBEDDED:
        from airstack.postgres.embedded import embedded

        with embedded(probes.bin_dir) as server:
            yield server
    else:
        from airstack.postgres.embedded import pgserver_embedded

        with pgserver_embedded() as server:
            yield server
