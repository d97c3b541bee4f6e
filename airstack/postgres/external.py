"""An external Postgres named by ``AIRSTACK_TEST_POSTGRES_DSN`` (e.g. a CircleCI service container)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from airstack.errors import PostgresUnavailableError
from airstack.postgres import PostgresServer, redact_dsn
from airstack.postgres.provider import DSN_ENV, Provider


def normalise_dsn(dsn: str) -> str:
    """Accept ``postgres://``, ``postgresql://`` or ``postgresql+driver://``; return a psycopg2 SQLAlchemy URL."""
    parts = urlsplit(dsn.strip())
    if parts.scheme not in ("postgres", "postgresql") and not parts.scheme.startswith("postgresql+"):
        raise PostgresUnavailableError(
            f"{DSN_ENV} must be a postgresql:// URL, got scheme {parts.scheme or '(none)'!r}"
        )
    if not parts.path.strip("/"):
        raise PostgresUnavailableError(f"{DSN_ENV} must name a database (postgresql://user:pw@host:port/DBNAME)")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def external(dsn: str, timeout: float = 30.0) -> PostgresServer:
    """Check that the external server answers (waiting up to ``timeout`` s for one that is starting)."""
    import psycopg2

    from airstack.postgres.sql import wait_ready

    normalised = normalise_dsn(dsn)
    try:
        wait_ready(normalised, timeout=timeout)
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PostgresUnavailableError(f"{DSN_ENV} ({redact_dsn(normalised)}) does not answer: {first}") from None
    return PostgresServer(normalised, Provider.EXTERNAL, f"external server {redact_dsn(normalised)}")
