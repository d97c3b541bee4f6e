"""Postgres in a container through testcontainers (image: airstack.external_images "postgres")."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from airstack.docker_client import translated
from airstack.errors import DockerError, PostgresUnavailableError
from airstack.external_images import EXTERNAL_IMAGES, image
from airstack.postgres import PostgresServer
from airstack.postgres.provider import Provider


@contextlib.contextmanager
def container() -> Iterator[PostgresServer]:
    from testcontainers.community.postgres import PostgresContainer

    ref = image("postgres")
    password = secrets.token_urlsafe(24)
    pg = PostgresContainer(ref, username="airflow", password=password, dbname="airflow", driver="psycopg2")
    # Publish on loopback only, on a random port (testcontainers' default is every interface).
    pg.ports[5432] = ("127.0.0.1",)
    try:
        with translated(f"starting a Postgres container from {ref}"):
            pg.start()
    except DockerError as exc:
        with contextlib.suppress(DockerError), translated(f"removing the Postgres container from {ref}"):
            pg.stop()
        raise PostgresUnavailableError(
            f"cannot start a container from {ref} ({type(exc).__name__}): set {EXTERNAL_IMAGES['postgres'].env} to "
            "an image this daemon has or can pull (a mirror), or AIRSTACK_TEST_POSTGRES=embedded") from None
    try:
        host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
        dsn = f"postgresql+psycopg2://airflow:{password}@{host}:{port}/airflow"
        yield PostgresServer(dsn, Provider.CONTAINER, f"testcontainers {ref} on {host}:{port}")
    finally:
        pg.stop()
