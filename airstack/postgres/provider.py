"""Which Postgres the tests use: pure logic, no I/O (the probes are passed in).

Order, unless ``AIRSTACK_TEST_POSTGRES`` names one:

1. ``external``: ``AIRSTACK_TEST_POSTGRES_DSN`` is set (a CircleCI postgres service
   container, a shared dev database);
2. ``container``: a Docker daemon answers and has the image or can pull it (testcontainers,
   image from ``AIRSTACK_POSTGRES_IMAGE``, see airstack.external_images). A daemon that answers
   but cannot have the image (no registry access, a proxy) is passed over with one line,
   :attr:`Choice.note`, that says why and how to use Docker after all;
3. ``embedded``: ``initdb`` and ``pg_ctl`` are installed;
4. ``pgserver``: the ``pgserver`` wheel is installed: its bundled binaries, run the same way
   as ``embedded`` (127.0.0.1, a random password; as an unprivileged user when root).

The local environment's native runtime picks its binaries in the same order (embedded, then
pgserver): :func:`airstack.postgres.find_binaries`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from airstack.errors import PostgresUnavailableError

PROVIDER_ENV = "AIRSTACK_TEST_POSTGRES"
DSN_ENV = "AIRSTACK_TEST_POSTGRES_DSN"


class Provider(str, enum.Enum):
    EXTERNAL = "external"
    CONTAINER = "container"
    EMBEDDED = "embedded"
    PGSERVER = "pgserver"


@dataclass(frozen=True)
class Probes:
    """What this machine offers. Gathered by :func:`airstack.postgres.probe`."""

    requested: str | None = None
    external_dsn: str | None = None
    docker: bool = False
    docker_reason: str = ""
    image_problem: str = ""  # why the daemon cannot have the Postgres image ("": it has it, or pulled it)
    bin_dir: Path | None = None
    pgserver_bin_dir: Path | None = None


@dataclass(frozen=True)
class Choice:
    provider: Provider
    reason: str
    note: str = ""  # why Docker was passed over although a daemon answers (shown once, with the choice)

    def describe(self) -> str:
        """The provider, why, and why not a container when a daemon answered: one line."""
        return f"{self.provider.value} ({self.reason})" + (f", {self.note}" if self.note else "")


def _available(provider: Provider, probes: Probes) -> tuple[bool, str]:
    if provider is Provider.EXTERNAL:
        return bool(probes.external_dsn), f"{DSN_ENV} is set" if probes.external_dsn else f"{DSN_ENV} is not set"
    if provider is Provider.CONTAINER:
        if not probes.docker:
            return False, probes.docker_reason or "no Docker"
        if probes.image_problem:
            return False, probes.image_problem
        return True, "a Docker daemon answers"
    if provider is Provider.EMBEDDED:
        if probes.bin_dir:
            return True, f"initdb and pg_ctl found in {probes.bin_dir}"
        return False, "initdb/pg_ctl not found"
    if probes.pgserver_bin_dir:
        return True, f"the pgserver wheel's binaries in {probes.pgserver_bin_dir}"
    return False, "the pgserver wheel is not installed"


def choose_provider(probes: Probes) -> Choice:
    """Pick the provider; raise :class:`PostgresUnavailableError` with what to do if none fits."""
    if probes.requested:
        try:
            wanted = Provider(probes.requested.strip().lower())
        except ValueError:
            names = ", ".join(p.value for p in Provider)
            raise PostgresUnavailableError(f"{PROVIDER_ENV}={probes.requested!r} is not one of: {names}") from None
        ok, why = _available(wanted, probes)
        if not ok:
            raise PostgresUnavailableError(f"{PROVIDER_ENV}={wanted.value} was requested but {why}")
        return Choice(wanted, f"requested by {PROVIDER_ENV}; {why}")

    reasons = []
    for provider in Provider:
        ok, why = _available(provider, probes)
        if ok:
            passed_over = probes.docker and probes.image_problem and provider is not Provider.EXTERNAL
            return Choice(provider, why, f"not a container: {probes.image_problem}" if passed_over else "")
        reasons.append(why)
    raise PostgresUnavailableError(
        "no Postgres for the tests (" + "; ".join(reasons) + "): start Docker, install the PostgreSQL server "
        f"package, `pip install pgserver`, or set {DSN_ENV}"
    )
