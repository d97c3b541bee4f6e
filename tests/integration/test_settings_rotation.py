"""Fernet rotation the Airflow way, through the CLI: rotate, re-encrypt the database, drop the old key."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from airstack import proc
from airstack.postgres.sql import connect, create_database
from airstack.settings import store

pytestmark = pytest.mark.postgres
PROJECT = Path(__file__).resolve().parents[2]


def _password_token(dsn: str) -> bytes:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT password FROM connection WHERE conn_id = 'warehouse_db'")
            return cur.fetchone()[0].encode()
    finally:
        conn.close()


def test_rotate_reencrypt_and_drop_the_old_key(repo, postgres, cli):
    dsn = create_database(postgres.dsn, "rotation")
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn, "AIRSTACK_ROOT": str(repo.root),
           "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    airflow = Path(sys.executable).parent / "airflow"
    proc.run([airflow, "db", "migrate"], env=env, cwd=PROJECT, timeout=180)

    def settings_cli(*argv: str) -> str:
        # A process of its own: it must use the file's Fernet key, not this test process's.
        return proc.run([sys.executable, "-m", "airstack.settings", *argv], env=env, cwd=PROJECT, timeout=180).stdout

    settings_cli("apply", "local")
    old_key = store.load(repo.root, "local").airflow.keys.fernet_key
    token = _password_token(dsn)
    assert Fernet(old_key.encode()).decrypt(token) == b"s3cret-pw"

    assert cli("keys", "local", "--rotate-fernet")[0] == 0  # only the file changes
    keys = store.load(repo.root, "local").airflow.keys
    assert keys.fernet_key != old_key and keys.fernet_key_previous == [old_key]
    assert "0 add, 0 change" in settings_cli("diff", "local")  # old rows still readable with "new,old"

    settings_cli("keys", "local", "--finish-rotation")
    keys = store.load(repo.root, "local").airflow.keys
    assert keys.fernet_key_previous == []
    token = _password_token(dsn)
    assert Fernet(keys.fernet_key.encode()).decrypt(token) == b"s3cret-pw"
    with pytest.raises(InvalidToken):
        Fernet(old_key.encode()).decrypt(token)
