"""Whether settings/local is already in the local database, known without importing Airflow.

After ``up`` imports settings/local it records two things in ``.airstack/local/native/applied``:

- a digest of what it imported (an HMAC keyed with the Fernet key, so the file says nothing
  about the secrets it stands for);
- a fingerprint of the database's connection, variable and pool rows as they were then.

The next ``up`` skips the import only when both still match: the file is unchanged, and no one
changed those rows since (in the UI, the CLI, or another tool). A mismatch of either imports
again, so the shortcut can never hide a difference.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

TABLES = ("connection", "variable", "slot_pool")


def digest(settings, postgres_port: int) -> str:
    """What ``up`` would import: settings/local's ``airflow`` section (a ``schema.Airflow``) and this env's
    Postgres port (the roles it creates)."""
    body = json.dumps({"airflow": settings.model_dump(mode="json", by_alias=True), "port": postgres_port},
                      sort_keys=True, default=str).encode()
    return hmac.new((settings.keys.fernet_key or "-").encode(), body, hashlib.sha256).hexdigest()


def fingerprint(dsn: str) -> str:
    """One query: an md5 over every row of the tables the import writes (row text, ordered)."""
    from psycopg2 import sql

    from airstack.postgres.sql import connect

    parts = sql.SQL(", ").join(
        sql.SQL("(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t)")
        .format(sql.Identifier(table)) for table in TABLES)
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT concat_ws(',', {})").format(parts))
            return cur.fetchone()[0]
    finally:
        conn.close()


def unchanged(record: Path, wanted: str, dsn: str) -> bool:
    try:
        stored = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return stored.get("digest") == wanted and stored.get("fingerprint") == fingerprint(dsn)


def remember(record: Path, wanted: str, dsn: str) -> None:
    record.write_text(json.dumps({"digest": wanted, "fingerprint": fingerprint(dsn)}))
