"""SQL helpers (psycopg2, imported lazily): the tests' databases, and the local environment's roles,
databases and schema revision (``nox -s up``)."""

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


def admin_dsn(dsn: str) -> str:
    """The server's ``postgres`` database, with ``dsn``'s credentials (to create databases and roles)."""
    return with_database(dsn, "postgres")


def ensure_database(dsn: str, name: str, owner: str | None = None) -> None:
    """CREATE DATABASE unless it exists (Postgres has no IF NOT EXISTS for databases)."""
    from psycopg2 import sql

    conn = connect(admin_dsn(dsn))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            exists = cur.fetchone() is not None
    finally:
        conn.close()
    if not exists:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
        execute_autocommit(admin_dsn(dsn), statement)


def ensure_role(dsn: str, login: str, password: str) -> None:
    """A LOGIN role ``login`` (made unless it exists) whose password is ``password``."""
    from psycopg2 import sql

    role = sql.Identifier(login)
    execute_autocommit(
        admin_dsn(dsn),
        sql.SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN "
                "CREATE ROLE {} LOGIN; END IF; END $$").format(sql.Literal(login), role),
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)),
    )


def schema_revision(dsn: str) -> str | None:
    """The Alembic revision ``dsn``'s database is at (Airflow's ``alembic_version``); None before any migration."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT version_num FROM alembic_version")
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()
