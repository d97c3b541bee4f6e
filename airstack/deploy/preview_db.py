"""A preview environment's own metadata database, on integration's database server.

A preview (``deploy integration --preview``) never gets integration's ``airflow.metadata_connection``:
its scheduler, its migration Job and its api-server work on a database and a role of its own, made by
the deploy (before anything of the preview changes) on the server that URL names, and dropped by
``destroy --preview``/``--merged``. The deploy host reaches that server with psycopg, as integration's
user, which needs ``CREATEDB`` and ``CREATEROLE`` (an RDS master user has both).

Names (:func:`names`): ``preview_<preview name, '-' as '_'>`` for both the database and the role, a
valid unquoted Postgres identifier of at most 48 bytes (preview names have at most 40 characters).
Each gets the comment ``airstack preview <name>`` (:func:`marker`): a database or role of that name
without it is someone else's, and neither deploy nor destroy touches it.

The role's password is *derived*, not stored (:func:`password`): HMAC-SHA256 keyed by the password of
integration's metadata URL (the secret that already rules the server), over the preview's name.
So it is never on disk or in argv, a redeploy renders the same values (no needless pod roll), and a
preview's pods cannot work back to integration's password. Each deploy also sets the role's password
again (``ALTER ROLE``), so a rotated integration password gives every preview a new one at its next
deploy. The password reaches the server only as a SCRAM-SHA-256 verifier computed here by libpq
(``PQencryptPasswordConn``, as psql's ``\\password`` does), so not even the server's statement log
sees it.

Pure: :func:`names`, :func:`password`, :func:`plan`, :func:`isolated`. Side effects: :func:`ensure`,
:func:`drop` (psycopg 3), :func:`provision` (the deploy's step).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from rich.console import Console

from airstack.errors import AirstackError, ConfigError

console = Console(highlight=False, soft_wrap=True)  # one line each, however long

PREFIX = "preview_"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: Postgres cuts longer names silently
SETTINGS_FIELD = "airflow.metadata_connection"
_CONTEXT = b"airstack preview metadata database\x00"


class PreviewDatabaseError(AirstackError):
    """The preview's database could not be made or dropped (the message never holds a password)."""


@dataclass(frozen=True)
class PreviewDatabase:
    """Where a preview's metadata lives: its database and role on integration's server, and its URL."""

    preview: str
    database: str
    role: str
    host: str
    port: int
    url: str = ""  # the preview's SQLAlchemy URL, with its password (never printed)

    def __repr__(self) -> str:
        return f"PreviewDatabase({self.database!r} on {self.where})"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def names(preview: str) -> tuple[str, str]:
    """(database, role) of a preview: ``preview_<name>`` with ``-`` as ``_``, checked as a Postgres identifier."""
    name = PREFIX + preview.replace("-", "_")
    if not IDENTIFIER.match(name) or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ConfigError(f"preview {preview!r}: {name!r} is no Postgres identifier of at most "
                          f"{MAX_IDENTIFIER_BYTES} bytes (letters, digits, _)")
    return name, name


def marker(preview: str) -> str:
    """The comment on a preview's database and role: what makes them the preview's to change or drop."""
    return f"airstack preview {preview}"


def password(secret: str, preview: str) -> str:
    """The preview role's password: HMAC-SHA256(``secret``, the preview's name), URL-safe base64 (43 characters)."""
    digest = hmac.new(secret.encode(), _CONTEXT + preview.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _server(url: str, where: str):
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigError(f"{where}: {SETTINGS_FIELD}: previews need a PostgreSQL URL with a host "
                          "(postgresql+psycopg2://user:password@host:5432/airflow)")
    if not parts.password:
        raise ConfigError(f"{where}: {SETTINGS_FIELD}: has no password, from which previews' database passwords "
                          "are derived")
    return parts


def plan(admin_url: str | None, preview: str, where: str) -> PreviewDatabase:
    """The preview's database on the server of integration's metadata URL ``admin_url`` (pure; ``where``: the
    settings file, for messages): same host, port and URL options, its own user, password and database."""
    if not admin_url:
        raise ConfigError(f"{where}: {SETTINGS_FIELD}: not set: a preview's database is made on integration's "
                          "database server")
    parts = _server(admin_url, where)
    database, role = names(preview)
    secret = password(unquote(parts.password), preview)
    port = parts.port or 5432
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{quote(role, safe='')}:{quote(secret, safe='')}@{host}:{port}"
    url = urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))
    return PreviewDatabase(preview, database, role, parts.hostname, port, url)


def isolated(settings, url: str):
    """``settings`` with the preview's metadata URL instead of integration's (a copy; pure)."""
    return settings.model_copy(update={"airflow": settings.airflow.model_copy(update={"metadata_connection": url})})


# ------------------------------------------------------------------------------------------ side effects --
def _libpq(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def _one_line(exc: Exception, *secrets: str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _connect(admin_url: str, db: PreviewDatabase):
    import psycopg

    admin_password = unquote(urlsplit(admin_url).password or "")
    try:
        return psycopg.connect(_libpq(admin_url), autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise PreviewDatabaseError(f"{db.preview}: database server {db.where}: "
                                   f"{_one_line(exc, admin_password)}") from None


_COMMENT = {"database": "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            "role": "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s"}


def _state(conn, kind: str, name: str, preview: str) -> bool:
    """Whether the database/role ``name`` exists (False), is the preview's (True); someone else's: an error."""
    row = conn.execute(_COMMENT[kind], (name,)).fetchone()
    if row is None:
        return False
    if row[0] != marker(preview):
        raise PreviewDatabaseError(f"{preview}: {kind} {name} exists and is not this preview's (its comment is "
                                   f"{row[0]!r}, not {marker(preview)!r}): nothing was changed")
    return True


def _join(conn, role, name: str) -> None:
    """Make this (non-superuser, RDS) user able to give the role a database and to drop it later: a member
    that inherits its privileges, and (Postgres 16+, where a CREATEROLE user's own grant has neither) may SET it."""
    from psycopg import sql

    v16 = conn.info.server_version >= 160000
    if conn.execute("SELECT pg_has_role(current_user, %s, %s)", (name, "SET" if v16 else "MEMBER")).fetchone()[0]:
        return
    grant = "GRANT {} TO CURRENT_USER WITH INHERIT TRUE, SET TRUE" if v16 else "GRANT {} TO CURRENT_USER"
    conn.execute(sql.SQL(grant).format(role))


def ensure(db: PreviewDatabase, admin_url: str) -> list[str]:
    """Make (or keep) the preview's role, with its password set again, and its database owned by it, which
    only that role may connect to; returns what was done. A failure undoes what this call created."""
    import psycopg
    from psycopg import sql

    secret = unquote(urlsplit(db.url).password or "")
    done, undo = [], []
    with _connect(admin_url, db) as conn:
        try:
            role, database = sql.Identifier(db.role), sql.Identifier(db.database)
            role_exists = _state(conn, "role", db.role, db.preview)
            db_exists = _state(conn, "database", db.database, db.preview)
            verifier = conn.pgconn.encrypt_password(secret.encode(), db.role.encode(), b"scram-sha-256").decode()
            if role_exists:
                conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(verifier)))
                done.append(f"role {db.role}: exists (password set)")
            else:
                conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(verifier)))
                undo.append(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
                conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(role, sql.Literal(marker(db.preview))))
                done.append(f"role {db.role}: created")
            _join(conn, role, db.role)
            if db_exists:
                done.append(f"database {db.database}: exists")
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
                undo.insert(0, sql.SQL("DROP DATABASE IF EXISTS {}").format(database))
                conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(database, sql.Literal(marker(db.preview))))
                conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(database))
                done.append(f"database {db.database}: created (owner {db.role}; no other role may connect)")
        except psycopg.Error as exc:
            for statement in undo:
                try:
                    conn.execute(statement)
                except psycopg.Error:
                    pass
            undone = " (what it had created was dropped again)" if undo else ""
            raise PreviewDatabaseError(f"{db.preview}: database server {db.where}: {_one_line(exc, secret)}"
                                       f"{undone}") from None
    return done


def drop(db: PreviewDatabase, admin_url: str) -> bool:
    """Drop the preview's database (its sessions ended first) and role; False: neither existed."""
    import psycopg
    from psycopg import sql

    with _connect(admin_url, db) as conn:
        try:
            db_exists = _state(conn, "database", db.database, db.preview)
            role_exists = _state(conn, "role", db.role, db.preview)
            database, role = sql.Identifier(db.database), sql.Identifier(db.role)
            if db_exists:
                if conn.info.server_version >= 130000:
                    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(database))
                else:  # before Postgres 13: end its sessions, then drop it
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                 (db.database,))
                    conn.execute(sql.SQL("DROP DATABASE {}").format(database))
            if role_exists:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(role))  # its grants here (this database only)
                conn.execute(sql.SQL("DROP ROLE {}").format(role))
        except psycopg.Error as exc:
            raise PreviewDatabaseError(f"{db.preview}: database server {db.where}: {_one_line(exc)}") from None
    return db_exists or role_exists


def provision(settings, preview: str, where: str, dry_run: bool):
    """The deploy's step, before anything of the preview changes: its database and role made (or, with
    ``dry_run``, only said), and ``settings`` returned with the preview's metadata URL in place of
    integration's."""
    db = plan(settings.airflow.metadata_connection, preview, where)
    if dry_run:
        console.print(f"{preview}: would make (if absent) database {db.database} and role {db.role} on {db.where}"
                      " (integration's database server), and set the role's password")
    else:
        for line in ensure(db, settings.airflow.metadata_connection):
            console.print(f"{preview}: {line} on {db.where}")
    return isolated(settings, db.url)
