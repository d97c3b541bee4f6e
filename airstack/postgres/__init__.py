"""Postgres for the tests and the local environment.

- here: :func:`postgres_server`, one context manager over four providers for the tests (see
  :mod:`.provider`), and which PostgreSQL server binaries to run;
- :mod:`.provider`: the providers and how one is chosen; :mod:`.container`, :mod:`.embedded`,
  :mod:`.external`: each provider (:mod:`.embedded` also runs the local env's native Postgres);
- :mod:`.sql`: SQL helpers: the tests' databases, and ``up``'s roles, databases and schema revision.

Which PostgreSQL server binaries to run is decided here, once, for the tests' providers and
the local environment's native runtime: the system's (PATH, then Debian's versioned folders),
else the ones bundled in the ``pgserver`` wheel (a dev dependency), so Python is all it needs.
"""

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

from airstack.errors import PostgresUnavailableError
from airstack.postgres.provider import DSN_ENV, PROVIDER_ENV, Choice, Probes, Provider, choose_provider

BIN_ENV = "AIRSTACK_POSTGRES_BIN"  # the PostgreSQL server binaries to use: a folder, or `pgserver`

__all__ = ["Binaries", "PostgresServer", "Provider", "Probes", "choose_provider", "find_bin_dir", "find_binaries",
           "pgserver_bin_dir", "probe", "postgres_server"]

DEBIAN_GLOBS = ("/usr/lib/postgresql/*/bin",)


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


@dataclass(frozen=True)
class Binaries:
    """The PostgreSQL server binaries to run, and where they come from (for messages)."""

    bin_dir: Path
    from_wheel: bool

    def describe(self) -> str:
        if self.from_wheel:
            return f"Postgres bundled in the pgserver wheel ({self.bin_dir})"
        return f"PostgreSQL from {self.bin_dir}"


def _has_server_binaries(folder: Path) -> bool:
    return (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()


def find_bin_dir(path: str | None = None, extra_globs: tuple[str, ...] = DEBIAN_GLOBS) -> Path | None:
    """The system's folder holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's versioned folders,
    newest first."""
    initdb = shutil.which("initdb", path=path)
    if initdb and shutil.which("pg_ctl", path=path):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        (Path(p) for pattern in extra_globs for p in glob.glob(pattern)),
        key=lambda p: [int(x) if x.isdigit() else x for x in p.parent.name.split(".")],
        reverse=True,
    )
    for candidate in candidates:
        if _has_server_binaries(candidate):
            return candidate
    return None


def pgserver_bin_dir() -> Path | None:
    """The binaries bundled in the installed ``pgserver`` wheel (found without importing it), or None."""
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "pginstall" / "bin"
        if _has_server_binaries(folder):
            return folder
    return None


def find_binaries(path: str | None = None, extra_globs: tuple[str, ...] = DEBIAN_GLOBS,
                  environ: dict[str, str] | None = None) -> Binaries | None:
    """The server binaries to run: ``AIRSTACK_POSTGRES_BIN`` (a folder, or ``pgserver`` for the wheel's)
    when set; else the system's, else the pgserver wheel's (looked up only when needed)."""
    chosen = (os.environ if environ is None else environ).get(BIN_ENV)
    if chosen:
        folder = pgserver_bin_dir() if chosen == "pgserver" else Path(chosen)
        if folder is None or not _has_server_binaries(folder):
            raise PostgresUnavailableError(f"{BIN_ENV}={chosen}: no initdb and pg_ctl there "
                                           "(a folder of PostgreSQL server binaries, or `pgserver` for the wheel's)")
        return Binaries(folder, from_wheel=chosen == "pgserver")
    system = find_bin_dir(path, extra_globs)
    if system is not None:
        return Binaries(system, from_wheel=False)
    wheel = pgserver_bin_dir()
    return Binaries(wheel, from_wheel=True) if wheel is not None else None


def probe(environ: dict[str, str] | None = None, check_docker: bool = True, image_problem: str | None = None) -> Probes:
    """Look at this machine and the environment (the I/O half of the provider choice).

    Where a daemon answers, whether it can have the Postgres image: on the daemon, else one pull
    attempt (:func:`airstack.external_images.unobtainable`; milliseconds where the pull is refused,
    at most its wait where it hangs). ``image_problem`` gives an earlier probe's answer instead
    (pytest-xdist's workers take their controller's). No daemon, or an external DSN: not asked.
    """
    environ = dict(os.environ if environ is None else environ)
    requested = environ.get(PROVIDER_ENV) or None
    docker_ok, docker_reason = False, "not probed"
    if check_docker:
        from airstack.docker_client import docker_status

        docker_ok, docker_reason = docker_status()
    external = environ.get(DSN_ENV) or None
    if image_problem is None:
        image_problem = ""
        if docker_ok and not external and (requested or "container").strip().lower() == Provider.CONTAINER.value:
            from airstack.external_images import unobtainable

            image_problem = str(unobtainable("postgres", environ) or "")
    return Probes(
        requested=requested,
        external_dsn=external,
        docker=docker_ok,
        docker_reason=docker_reason,
        image_problem=image_problem,
        bin_dir=find_bin_dir(environ.get("PATH")),
        pgserver_bin_dir=pgserver_bin_dir(),
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
    else:
        # embedded and pgserver: the same server, from the system's binaries or from the wheel's.
        from airstack.postgres.embedded import embedded

        wheel = choice.provider is Provider.PGSERVER
        bin_dir = probes.pgserver_bin_dir if wheel else probes.bin_dir
        with embedded(Binaries(bin_dir, from_wheel=wheel) if bin_dir else None, choice.provider) as server:
            yield server
