from pathlib import Path

import pytest

from airstack.errors import PostgresUnavailableError
from airstack.postgres import redact_dsn
from airstack.postgres.embedded import run_as_user
from airstack.postgres.external import normalise_dsn
from airstack.postgres.provider import Probes, Provider, choose_provider

BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.mark.parametrize(
    ("probes", "expected"),
    [
        (Probes(external_dsn="postgresql://u:p@h/db", docker=True, bin_dir=BIN, pgserver=True), Provider.EXTERNAL),
        (Probes(docker=True, bin_dir=BIN, pgserver=True), Provider.CONTAINER),
        (Probes(docker=False, bin_dir=BIN, pgserver=True), Provider.EMBEDDED),
        (Probes(docker=False, bin_dir=None, pgserver=True), Provider.PGSERVER),
        (Probes(requested="pgserver", docker=True, bin_dir=BIN, pgserver=True), Provider.PGSERVER),
        (Probes(requested="EMBEDDED", docker=True, bin_dir=BIN), Provider.EMBEDDED),
    ],
    ids=["dsn-wins", "docker", "binaries", "pgserver-fallback", "requested", "requested-case-insensitive"],
)
def test_choice(probes, expected):
    assert choose_provider(probes).provider is expected


def test_reason_says_why():
    assert "initdb and pg_ctl found in /usr/lib/postgresql/15/bin" in choose_provider(Probes(bin_dir=BIN)).reason


def test_nothing_available_says_what_to_do():
    with pytest.raises(PostgresUnavailableError, match="start Docker.*pgserver.*AIRSTACK_TEST_POSTGRES_DSN"):
        choose_provider(Probes(docker_reason="no daemon"))


def test_requested_but_unavailable():
    with pytest.raises(PostgresUnavailableError, match="container was requested but no daemon"):
        choose_provider(Probes(requested="container", docker_reason="no daemon", bin_dir=BIN))


def test_requested_unknown():
    with pytest.raises(PostgresUnavailableError, match="'sqlite' is not one of"):
        choose_provider(Probes(requested="sqlite"))


def test_redact_dsn():
    assert redact_dsn("postgresql+psycopg2://airflow:pa%40ss@127.0.0.1:5432/airflow") == \
        "postgresql+psycopg2://airflow:***@127.0.0.1:5432/airflow"
    assert redact_dsn("postgresql://postgres@/db?host=/tmp/x") == "postgresql://postgres@/db?host=/tmp/x"


@pytest.mark.parametrize("dsn", ["postgres://u:p@h:5432/db", "postgresql://u:p@h/db", "postgresql+asyncpg://u@h/db"])
def test_normalise_dsn(dsn):
    assert normalise_dsn(dsn).startswith("postgresql+psycopg2://")


@pytest.mark.parametrize(("dsn", "error"), [("mysql://u@h/db", "scheme 'mysql'"),
                                            ("postgresql://u@h", "name a database")])
def test_normalise_dsn_rejects(dsn, error):
    with pytest.raises(PostgresUnavailableError, match=error):
        normalise_dsn(dsn)


def test_run_as_user():
    assert run_as_user(euid=1000) is None
    assert run_as_user(euid=0, environ={"AIRSTACK_POSTGRES_RUN_AS": "root"}).pw_uid == 0
    with pytest.raises(PostgresUnavailableError, match="AIRSTACK_POSTGRES_RUN_AS"):
        run_as_user(euid=0, environ={"AIRSTACK_POSTGRES_RUN_AS": "no-such-user-here"})
