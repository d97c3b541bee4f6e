"""Small SQL helpers used while setting up test databases (psycopg2, imported lazily)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential


def libpq_url(dsn: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg2://``) as a plain libpq URL (``postgresql://``)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def connect(dsn: str, **kwargs):
    import psycopg2

    return psycopg2.connect(libpq_url(dsn), **kwargs)


def wait_ready(dsn: str, timeout: float = 30.0) -> None:
    """Block until ``SELECT 1`` succeeds (exponential backoff up to ``timeout`` seconds)."""
    import psycopg2

    @retry(retry=retry_if_exception_type(psycopg2.OperationalError), stop=stop_after_delay(timeout),
           wait=wait_exponential(multiplier=0.05, max=1.0), reraise=True)
    def _ping() -> None:
        with connect(dsn, connect_timeout=3) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()

    _ping()


def execute_autocommit(dsn: str, *statements) -> None:
    """Run statements outside a transaction (``CREATE DATABASE`` needs that)."""
    conn = connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def create_database(dsn: str, name: str) -> str:
    """Create database ``name`` (dropping it first) and return its DSN."""
    from psycopg2 import sql

    ident = sql.Identifier(name)
    execute_autocommit(dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident),
                       sql.SQL("CREATE DATABASE {}").format(ident))
    return with_database(dsn, name)


def clone_database(dsn: str, name: str) -> str:
    """A new database ``name`` copied from ``dsn``'s (``CREATE DATABASE ... TEMPLATE``); returns its DSN.

    Nobody may be connected to the source while it is copied.
    """
    from psycopg2 import sql

    source = urlsplit(dsn).path.lstrip("/")
    ident = sql.Identifier(name)
    execute_autocommit(with_database(dsn, "postgres"), sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident),
                       sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, sql.Identifier(source)))
    return with_database(dsn, name)
