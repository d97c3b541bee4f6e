"""Import settings into an Airflow metadata database through Airflow's ORM, in one transaction.

Either everything in the file is applied or nothing is: the whole import is one database
transaction, committed at the end. Values are compared decrypted and never printed.
Airflow is imported lazily: the caller configures ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``
and ``AIRFLOW__CORE__FERNET_KEY`` first.
"""

from __future__ import annotations

import json
from typing import Any

from airstack.errors import AirstackError
from airstack.settings.plan import REMOVE, Action, State, changes, plan
from airstack.settings.schema import Airflow

CONN_FIELDS = ("conn_type", "description", "host", "port", "login", "password", "schema", "extra")


def _conn_fields(conn) -> dict[str, Any]:
    fields = {name: getattr(conn, name) for name in CONN_FIELDS if name != "extra"}
    fields["extra"] = json.loads(conn.extra) if conn.extra else {}
    return {k: (None if v == "" else v) for k, v in fields.items()}


def desired_state(settings: Airflow) -> State:
    """The settings as Airflow would store them (URIs parsed the way Airflow parses them)."""
    from airflow.models.connection import Connection

    state = State()
    for conn in settings.connections:
        obj = Connection(**conn.airflow_fields())
        if conn.uri is not None:
            obj.conn_type = conn.type
        state.connections[conn.id] = _conn_fields(obj)
    state.variables = dict(settings.variables)
    state.pools = {p.name: {"slots": p.slots, "description": p.description or None,
                            "include_deferred": p.include_deferred} for p in settings.pools}
    return state


def current_state(session) -> State:
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from sqlalchemy import select

    return State(
        connections={c.conn_id: _conn_fields(c) for c in session.scalars(select(Connection))},
        variables={v.key: v.val for v in session.scalars(select(Variable))},
        pools={p.pool: {"slots": p.slots, "description": p.description or None,
                        "include_deferred": bool(p.include_deferred)} for p in session.scalars(select(Pool))},
    )


def _apply_one(session, action: Action, desired: State) -> None:
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from sqlalchemy import select

    model, key = {"connection": (Connection, Connection.conn_id), "variable": (Variable, Variable.key),
                  "pool": (Pool, Pool.pool)}[action.kind]
    existing = session.scalars(select(model).where(key == action.name)).first()
    if action.action == REMOVE:
        session.delete(existing)
        return
    if action.kind == "connection":
        fields = desired.connections[action.name]
        obj = existing or Connection(conn_id=action.name, conn_type=fields["conn_type"])
        for name in CONN_FIELDS:
            value = fields[name]
            setattr(obj, name, (json.dumps(value, sort_keys=True) if value else None) if name == "extra" else value)
    elif action.kind == "variable":
        obj = existing or Variable(key=action.name)
        obj.val = desired.variables[action.name]
    else:
        fields = desired.pools[action.name]
        obj = existing or Pool(pool=action.name)
        obj.slots, obj.description = fields["slots"], fields["description"]
        obj.include_deferred = fields["include_deferred"]
    if existing is None:
        session.add(obj)


def apply(settings: Airflow, *, prune: bool = False, dry_run: bool = False) -> list[Action]:
    """Bring the database in line with ``settings`` in one transaction; return every item's action."""
    return apply_state(desired_state(settings), prune=prune, dry_run=dry_run)


def snapshot() -> State:
    """What the database holds now (decrypted): used to compare before and after."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return current_state(session)


def apply_state(desired: State, *, prune: bool = False, dry_run: bool = False) -> list[Action]:
    from airflow.utils.session import create_session
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with create_session() as session:
            actions = plan(desired, current_state(session), prune=prune)
            if not dry_run:
                for action in changes(actions):
                    _apply_one(session, action, desired)
            else:
                session.rollback()
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        raise AirstackError(f"the Airflow database refused the import (nothing was changed): {first}") from None
    return actions


def reencrypt() -> int:
    """Re-encrypt every connection and variable with the current Fernet key (Airflow's rotate-fernet-key)."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    count = 0
    with create_session() as session:
        for model in (Connection, Variable):
            for row in session.scalars(select(model)):
                row.rotate_fernet_key()
                count += 1
    return count


def read_back(kind: str, name: str) -> Any:
    """One item as Airflow returns it (tests use this to check round trips)."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        if kind == "variable":
            var = session.scalars(select(Variable).where(Variable.key == name)).first()
            return None if var is None else var.val
        conn = session.scalars(select(Connection).where(Connection.conn_id == name)).first()
        return None if conn is None else _conn_fields(conn)
