"""Postgres through testcontainers, on loopback only."""

from __future__ import annotations

import pytest

from airstack.docker_client import get_client
from airstack.external_images import image
from airstack.postgres import Provider, postgres_server, probe
from airstack.postgres.provider import Choice
from airstack.postgres.sql import connect

pytestmark = pytest.mark.docker


def test_container_provider_serves_sql_on_loopback():
    with postgres_server(Choice(Provider.CONTAINER, "test"), probe()) as server:
        conn = connect(server.dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database()")
            assert cur.fetchone() == ("airflow", "airflow")
        conn.close()
        client = get_client()
        (container,) = [c for c in client.containers.list() if c.image.tags and image("postgres") in c.image.tags
                        and str(server.dsn.rsplit(":", 1)[1].split("/")[0]) in str(c.ports)]
        bindings = container.attrs["HostConfig"]["PortBindings"]["5432/tcp"]
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}


def test_unpullable_image_is_one_clear_error(monkeypatch):
    from airstack.errors import PostgresUnavailableError

    monkeypatch.setenv("AIRSTACK_POSTGRES_IMAGE", "local/no-such-postgres:0")
    with pytest.raises(PostgresUnavailableError, match="cannot start a container from local/no-such-postgres:0.*"
                                                       "AIRSTACK_POSTGRES_IMAGE"):
        with postgres_server(Choice(Provider.CONTAINER, "test"), probe()):
            pass
