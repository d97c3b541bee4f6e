"""Each Postgres provider really starts (or reaches) a server that answers SQL."""

from __future__ import annotations

import os

import pytest

from airstack.errors import PostgresUnavailableError
from airstack.postgres import Provider, find_bin_dir, postgres_server, probe
from airstack.postgres.external import external
from airstack.postgres.provider import DSN_ENV, Choice
from airstack.postgres.sql import connect


def _server_version(dsn: str) -> str:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), current_user")
            return cur.fetchone()
    finally:
        conn.close()


@pytest.mark.skipif(find_bin_dir() is None, reason="no initdb/pg_ctl on this machine")
def test_embedded_binaries():
    probes = probe(check_docker=False)
    with postgres_server(Choice(Provider.EMBEDDED, "test"), probes) as server:
        version, user = _server_version(server.dsn)
        assert user == "airflow" and version.split(".")[0].isdigit()
        assert "127.0.0.1" in server.dsn and "***" in server.redacted_dsn
        if os.geteuid() == 0:
            assert "as user" in server.detail  # initdb refuses root: it ran unprivileged
    # Stopped and removed on exit.
    with pytest.raises(Exception):
        _server_version(server.dsn)


def test_embedded_pgserver_fallback(monkeypatch):
    """Where no binaries exist (PATH emptied), the pgserver wheel provides Postgres."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("airstack.postgres.find_bin_dir", lambda path=None, extra_globs=(): None)
    probes = probe(check_docker=False)
    assert probes.bin_dir is None and probes.pgserver
    with postgres_server(Choice(Provider.PGSERVER, "test"), probes) as server:
        version, _ = _server_version(server.dsn)
        assert server.provider is Provider.PGSERVER and version.startswith("16")


def test_external_dsn(postgres, monkeypatch):
    """The session's server, given as an external DSN, is used as is."""
    monkeypatch.setenv(DSN_ENV, postgres.dsn.replace("postgresql+psycopg2://", "postgres://", 1))
    probes = probe(check_docker=False)
    assert probes.external_dsn
    with postgres_server(Choice(Provider.EXTERNAL, "test"), probes) as server:
        assert server.dsn == postgres.dsn
        assert _server_version(server.dsn)[0]


def test_external_dsn_unreachable_is_one_clear_line():
    with pytest.raises(PostgresUnavailableError) as excinfo:
        external("postgresql://ci:s3cret-pw@127.0.0.1:1/airflow", timeout=0.5)
    message = str(excinfo.value)
    assert DSN_ENV in message and "does not answer" in message and "\n" not in message
    assert "s3cret-pw" not in message
