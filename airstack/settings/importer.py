"""Import settings into an Airflow metadata database, in one transaction, one writer at a time.

Either everything in the file is applied or nothing is: the whole import is one database
transaction, committed at the end. Writers are serialised: each transaction first takes a
Postgres advisory lock (:data:`LOCK_KEY`), so two ``settings-apply`` (or ``settings-keys
--finish-rotation``) runs on one database end in one file's state, never a mix; the second
waits (saying so) up to :data:`LOCK_WAIT_SECONDS`, then gives up without changing anything.

Rows are read and written through the tables of Airflow's models (SQLAlchemy Core), values
encrypted and decrypted with Airflow's own Fernet (``get_fernet()``):
- values are exact: an empty string is stored as an empty (encrypted) string, not NULL, and
  NULL means "not given";
- building an ORM ``Connection`` per row would rebuild Airflow's secrets-masker pattern each
  time (minutes for a few hundred large passwords), and the ORM's ``password`` setter ignores
  an empty string;
- a value the environment's Fernet keys cannot decrypt is a :class:`FernetMismatchError`,
  not a traceback (nor Airflow's silent None for variables).

Values are compared decrypted and never printed. Airflow is imported lazily: the caller
configures ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` and ``AIRFLOW__CORE__FERNET_KEY`` first.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any

from airstack import airflow_compat
from airstack.errors import AirstackError
from airstack.settings.fields import FIELDS, connection_fields
from airstack.settings.plan import ADD, CHANGE, REMOVE, Action, State, changes, plan
from airstack.settings.schema import Airflow

CONN_FIELDS = FIELDS
# pg_advisory_xact_lock's key: "airstack settings" as a signed 64-bit integer (any constant would do,
# as long as every writer uses the same one).
LOCK_KEY = int.from_bytes(b"airstack", "big") - 2**63
LOCK_WAIT_SECONDS = 300


class FernetMismatchError(AirstackError):
    """A database value does not decrypt with the Fernet keys in use."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} in the database does not decrypt with fernet_key or fernet_key_previous "
                         "(it was written with another key)")
        self.kind, self.name = kind, name


class LockTimeoutError(AirstackError):
    pass


def desired_state(settings: Airflow) -> State:
    """The settings as Airflow would store them (URIs parsed the way Airflow parses them)."""
    state = State()
    for conn in settings.connections:
        state.connections[conn.id] = connection_fields(conn)
    state.variables = dict(settings.variables)
    state.pools = {p.name: {"slots": p.slots, "description": p.description,
                            "include_deferred": p.include_deferred} for p in settings.pools}
    return state


def _tables():
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable

    return Connection.__table__, Variable.__table__, Pool.__table__


def _fernet():
    return airflow_compat.fernet()


def _decrypt(fernet, token: str | None, encrypted: bool, kind: str, name: str) -> str | None:
    from cryptography.fernet import InvalidToken

    if not token or not encrypted:  # Airflow's own rule (crypto.py): only a non-empty encrypted value decrypts
        return token
    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken:
        raise FernetMismatchError(kind, name) from None


def _encrypt(fernet, value: str | None) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    return fernet.encrypt(value.encode()).decode(), bool(fernet.is_encrypted)


def _extra_of(text: str | None) -> Any:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text  # not ours (someone else wrote it): differs from any file's extra
    return value or None


def current_state(session) -> State:
    from sqlalchemy import select

    conn, var, pool = _tables()
    fernet = _fernet()
    state = State()
    for r in session.execute(select(conn.c.conn_id, conn.c.conn_type, conn.c.description, conn.c.host,
                                    conn.c.port, conn.c.login, conn.c.password, conn.c.schema, conn.c.extra,
                                    conn.c.is_encrypted, conn.c.is_extra_encrypted)):
        extra = _decrypt(fernet, r.extra, r.is_extra_encrypted, "connection", r.conn_id)
        state.connections[r.conn_id] = {
            "conn_type": r.conn_type, "description": r.description, "host": r.host, "port": r.port, "login": r.login,
            "password": _decrypt(fernet, r.password, r.is_encrypted, "connection", r.conn_id), "schema": r.schema,
            "extra": _extra_of(extra)}
    for r in session.execute(select(var.c.key, var.c.val, var.c.is_encrypted)):
        state.variables[r.key] = _decrypt(fernet, r.val, r.is_encrypted, "variable", r.key)
    for r in session.execute(select(pool.c.pool, pool.c.slots, pool.c.description, pool.c.include_deferred)):
        state.pools[r.pool] = {"slots": r.slots, "description": r.description,
                               "include_deferred": bool(r.include_deferred)}
    return state


def _connection_row(fernet, name: str, fields: dict) -> dict:
    password, encrypted = _encrypt(fernet, fields["password"])
    extra_text = json.dumps(fields["extra"], sort_keys=True) if fields["extra"] else None
    extra, extra_encrypted = _encrypt(fernet, extra_text)
    return {"conn_id": name, "conn_type": fields["conn_type"], "description": fields["description"],
            "host": fields["host"], "port": fields["port"], "login": fields["login"], "password": password,
            "schema": fields["schema"], "extra": extra, "is_encrypted": encrypted,
            "is_extra_encrypted": extra_encrypted}


def _write(session, actions: list[Action], desired: State) -> None:
    """Every change as a few bulk statements (executemany): inserts, updates, deletes per table."""
    from sqlalchemy import bindparam

    conn, var, pool = _tables()
    fernet = _fernet()
    table_of = {"connection": (conn, conn.c.conn_id), "variable": (var, var.c.key), "pool": (pool, pool.c.pool)}
    rows: dict[tuple[str, str], list[dict]] = {}
    for action in changes(actions):
        if action.action == REMOVE:
            rows.setdefault((action.kind, REMOVE), []).append({"k_": action.name})
            continue
        if action.kind == "connection":
            row = _connection_row(fernet, action.name, desired.connections[action.name])
        elif action.kind == "variable":
            val, encrypted = _encrypt(fernet, desired.variables[action.name])
            row = {"key": action.name, "val": val, "is_encrypted": encrypted}
        else:
            fields = desired.pools[action.name]
            row = {"pool": action.name, "slots": fields["slots"], "description": fields["description"],
                   "include_deferred": fields["include_deferred"]}
        rows.setdefault((action.kind, action.action), []).append(row)
    for (kind, what), batch in rows.items():
        table, key = table_of[kind]
        if what == ADD:
            session.execute(table.insert(), batch)
        elif what == CHANGE:
            for row in batch:
                row["k_"] = row[key.name]
            session.execute(table.update().where(key == bindparam("k_")), batch)
        else:
            session.execute(table.delete().where(key == bindparam("k_")), batch)


@contextmanager
def _writer_session():
    """A session whose transaction holds the settings writers' lock (Postgres; others have one writer anyway)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    with airflow_compat.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            if not session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar():
                print("another settings writer holds this database's settings lock: waiting for it "
                      f"(at most {LOCK_WAIT_SECONDS} s)", file=sys.stderr)
                session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
                try:
                    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
                except OperationalError:
                    raise LockTimeoutError(f"another settings writer held this database's settings lock for "
                                           f"{LOCK_WAIT_SECONDS} s: nothing was changed; try again") from None
                session.execute(text("SET LOCAL lock_timeout = 0"))
        yield session


def apply(settings: Airflow, *, prune: bool = False, dry_run: bool = False) -> list[Action]:
    """Bring the database in line with ``settings`` in one transaction; return every item's action."""
    return apply_state(desired_state(settings), prune=prune, dry_run=dry_run)


def snapshot() -> State:
    """What the database holds now (decrypted): used to compare before and after."""

    with airflow_compat.session() as session:
        return current_state(session)


@contextmanager
def _untimed(name: str):
    yield


def apply_state(desired: State, *, prune: bool = False, dry_run: bool = False, timings=None) -> list[Action]:
    """``timings``: a callable giving a context manager per phase name (``nox -s bench -- settings-apply-large``)."""
    from sqlalchemy.exc import SQLAlchemyError

    phase = timings or _untimed
    try:
        if dry_run:

            with airflow_compat.session() as session:
                actions = plan(desired, current_state(session), prune=prune)
                session.rollback()
            return actions
        with _writer_session() as session:
            with phase("lock, read the database (decrypt), plan"):  # under the lock: it sees the last writer's result
                actions = plan(desired, current_state(session), prune=prune)
            with phase("write (encrypt, bulk statements)"):
                _write(session, actions, desired)
            with phase("commit"):
                session.commit()
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        raise AirstackError(f"the Airflow database refused the import (nothing was changed): {first}") from None
    return actions


def reencrypt() -> int:
    """Re-encrypt every connection and variable with the current Fernet key (Airflow's rotate-fernet-key)."""
    from cryptography.fernet import InvalidToken
    from sqlalchemy import select

    conn, var, _ = _tables()
    fernet = _fernet()

    def rotate(token: str | None, encrypted: bool, kind: str, name: str) -> str | None:
        if not token or not encrypted:
            return token
        try:
            return fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise FernetMismatchError(kind, name) from None

    count = 0
    with _writer_session() as session:
        for r in session.execute(select(conn.c.id, conn.c.conn_id, conn.c.password, conn.c.is_encrypted,
                                        conn.c.extra, conn.c.is_extra_encrypted)).all():
            session.execute(conn.update().where(conn.c.id == r.id).values(
                password=rotate(r.password, r.is_encrypted, "connection", r.conn_id),
                extra=rotate(r.extra, r.is_extra_encrypted, "connection", r.conn_id)))
            count += 1
        for r in session.execute(select(var.c.id, var.c.key, var.c.val, var.c.is_encrypted)).all():
            session.execute(var.update().where(var.c.id == r.id).values(
                val=rotate(r.val, r.is_encrypted, "variable", r.key)))
            count += 1
    return count


def read_back(kind: str, name: str) -> Any:
    """One item as Airflow's own models return it (tests use this to check round trips)."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from sqlalchemy import select

    with airflow_compat.session() as session:
        if kind == "variable":
            var = session.scalars(select(Variable).where(Variable.key == name)).first()
            return None if var is None else var.val
        conn = session.scalars(select(Connection).where(Connection.conn_id == name)).first()
        if conn is None:
            return None
        fields = {field: getattr(conn, field) for field in CONN_FIELDS if field != "extra"}
        return {**fields, "extra": _extra_of(conn.extra)}
