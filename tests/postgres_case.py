"""Two tests on the session's Postgres, for tests that run a whole pytest session on it in a subprocess.

Not collected by default (not ``test_*.py``): tests/docker/test_restricted_docker.py runs it by path, with
environment variables that change which Postgres the session gets, to see what the session says once.
"""

from __future__ import annotations


def _answer(dsn: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(dsn)
    try:
        with engine.connect() as connection:
            return connection.execute(text("select 41 + 1")).scalar_one()
    finally:
        engine.dispose()


def test_first_query(postgres):
    assert _answer(postgres.dsn) == 42


def test_second_query(postgres):
    assert _answer(postgres.dsn) == 42
