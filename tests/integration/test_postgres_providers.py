"""Each Postgres provider really starts (or reaches) a server that answers SQL."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airstack.errors import LocalEnvError, PostgresUnavailableError
from airstack.localenv.config import LocalConfig
from airstack.localenv.native import NativeRuntime
from airstack.postgres import (Binaries, Probes, Provider, choose_provider, find_bin_dir, find_binaries,
                               pgserver_bin_dir, postgres_server, probe)
from airstack.postgres.embedded import embedded, free_port, run_as_user
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


def _data_directory_owner(dsn: str) -> int:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('data_directory')")
            return Path(cur.fetchone()[0]).stat().st_uid
    finally:
        conn.close()


def _expected_owner() -> int:
    """Who the server must run as: this process's user, or (as root) the existing unprivileged one."""
    user = run_as_user()
    return os.geteuid() if user is None else user.pw_uid


@pytest.mark.skipif(find_bin_dir() is None, reason="no initdb/pg_ctl on this machine")
def test_embedded_binaries():
    probes = probe(check_docker=False)
    with postgres_server(Choice(Provider.EMBEDDED, "test"), probes) as server:
        version, user = _server_version(server.dsn)
        assert user == "airflow" and version.split(".")[0].isdigit()
        assert "127.0.0.1" in server.dsn and "***" in server.redacted_dsn
        assert _data_directory_owner(server.dsn) == _expected_owner()
        if os.geteuid() == 0:
            assert "as user" in server.detail  # initdb refuses root: it ran unprivileged
    # Stopped and removed on exit.
    with pytest.raises(Exception):
        _server_version(server.dsn)


def test_pgserver_wheel_binaries():
    """The pgserver provider runs the wheel's bundled binaries like the system's: 127.0.0.1, a password,
    as this user or (as root) an existing unprivileged one; pgserver's own start-up (which adds a
    `pgserver` system user as root) is not used, so nothing is left on the machine."""
    probes = probe(check_docker=False)
    assert probes.pgserver_bin_dir is not None
    assert probes.pgserver_bin_dir.parts[-3:] == ("pgserver", "pginstall", "bin")
    with postgres_server(Choice(Provider.PGSERVER, "test"), probes) as server:
        version, user = _server_version(server.dsn)
        assert server.provider is Provider.PGSERVER and version.startswith("16") and user == "airflow"
        assert server.dsn.startswith("postgresql+psycopg2://airflow:") and "@127.0.0.1:" in server.dsn
        assert "pgserver wheel" in server.detail
        assert _data_directory_owner(server.dsn) == _expected_owner()
    with pytest.raises(Exception):
        _server_version(server.dsn)


def test_no_system_binaries_means_the_wheels():
    """A machine without PostgreSQL (nothing on this PATH, no versioned folders): the wheel's binaries, for the
    tests' provider choice and the native runtime alike."""
    binaries = find_binaries(path=os.devnull, extra_globs=())
    assert binaries == Binaries(pgserver_bin_dir(), from_wheel=True)
    import pgserver

    assert binaries.bin_dir == Path(pgserver.__file__).parent / "pginstall" / "bin"
    choice = choose_provider(Probes(bin_dir=None, pgserver_bin_dir=binaries.bin_dir))
    assert choice.provider is Provider.PGSERVER


@pytest.mark.skipif(os.geteuid() != 0, reason="as a normal user Postgres runs as this user, who can run them")
def test_binaries_the_postgres_user_cannot_run_are_one_clear_line(tmp_path):
    """As root, Postgres runs as an unprivileged user; binaries under a root-only folder fail up front."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    (locked / "bin").symlink_to(pgserver_bin_dir())
    binaries = Binaries(locked / "bin", from_wheel=True)
    with pytest.raises(PostgresUnavailableError) as excinfo:
        with embedded(binaries, Provider.PGSERVER):
            pass
    message = str(excinfo.value)
    assert f"user {run_as_user().pw_name}" in message and str(locked / "bin") in message and "\n" not in message


@pytest.mark.parametrize("source", ["wheel", "system"])
def test_native_runtime_runs_postgres(tmp_path, source):
    """The native runtime's Postgres from the wheel (a machine without PostgreSQL) or the system's binaries:
    initdb, start, stop; data of another major version is refused with one line."""
    binaries = find_binaries(path=os.devnull, extra_globs=()) if source == "wheel" else find_binaries()
    if source == "system" and (binaries is None or binaries.from_wheel):
        pytest.skip("no PostgreSQL binaries installed on this machine")
    config = LocalConfig(tmp_path / "repo", api_port=free_port(), postgres_port=free_port())
    runtime = NativeRuntime(config, binaries)
    assert runtime.postgres_source == binaries.describe()
    try:
        runtime.start_postgres()
        assert runtime.postgres_running()
        version, user = _server_version(config.metadata_dsn.replace("/airflow?", "/postgres?"))
        assert user == "airflow" and (version.startswith("16") or source == "system")
        runtime.stop_postgres()
        assert not runtime.postgres_running()
        made_by = (config.pgdata / "data" / "PG_VERSION").read_text().strip()
        assert version.split(".")[0] == made_by
        runtime.start_postgres()  # the same major version: it starts again
        runtime.stop_postgres()
        (config.pgdata / "data" / "PG_VERSION").write_text("9\n")
        number = version.split()[0]  # "15.18 (Debian 15.18-0+deb12u1)": 15.18
        with pytest.raises(LocalEnvError, match=rf"made by PostgreSQL 9 .* version {number}: `nox -s clean`"):
            runtime.start_postgres()
    finally:
        runtime.stop_postgres()
        shutil.rmtree(config.pgdata.parent, ignore_errors=True)
        shutil.rmtree(config.socket_dir, ignore_errors=True)


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
