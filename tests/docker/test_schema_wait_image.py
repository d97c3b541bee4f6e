"""The wait-for-migrations init container (airstack.deploy.schema_wait) in the runtime image itself, as a pod runs
it: its ``command`` replaces the image's ENTRYPOINT (``airflow``) and, with no ``args``, the image's CMD too,
which is what ``docker run --entrypoint`` does. Postgres is a container on the same daemon, reached on its bridge
address as a pod reaches the metadata database; no cluster here.
"""

from __future__ import annotations

import re
import time

import pytest

from airstack.deploy import schema_wait
from airstack.deploy.auth_policy import FAB_AUTH_MANAGER
from airstack.docker_client import get_client
from airstack.external_images import image
from airstack.postgres import Provider, postgres_server, probe
from airstack.postgres.provider import Choice
from airstack.postgres import sql
from tests.docker.test_images import built, scratch

pytestmark = pytest.mark.docker
__all__ = ["built", "scratch"]  # fixtures used here


def run(client, ref: str, entrypoint: list[str] | None, env: dict[str, str], args: list[str] | None = None
        ) -> tuple[int, str]:
    container = client.containers.run(ref, args, entrypoint=entrypoint, environment=env, detach=True)
    try:
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_the_wait_runs_in_the_runtime_image_and_passes_once_migrated(built):
    client = get_client()
    ref = f"airflow:{built['airflow']['tag']}"
    with postgres_server(Choice(Provider.CONTAINER, "test"), probe()) as server:
        dsn = sql.create_database(server.dsn, "schema_wait_image")
        port = dsn.rsplit(":", 1)[1].split("/")[0]
        (pg,) = [c for c in client.containers.list() if image("postgres") in (c.image.tags or [])
                 and port in str(c.ports)]
        address = pg.attrs["NetworkSettings"]["IPAddress"]
        env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": re.sub(r"@[^/@]+/", f"@{address}:5432/", dsn),
               "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,  # the chart's airflow.cfg says so in a pod
               "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        # The chart's own wait gives these as args only: after the image's ENTRYPOINT, `airflow airflow db ...`.
        code, logs = run(client, ref, None, env, args=schema_wait.command(3))
        assert code != 0 and "invalid choice: 'airflow'" in logs, logs
        code, logs = run(client, ref, schema_wait.command(3), env)
        assert code != 0 and "There are still unapplied migrations after 3 seconds" in logs, logs
        code, logs = run(client, ref, ["airflow", "db", "migrate"], env)  # what the migration Job runs
        assert code == 0, logs
        started = time.monotonic()
        code, logs = run(client, ref, schema_wait.command(), env)
        assert code == 0, logs
        print(f"the wait on a migrated database, container start to exit: {time.monotonic() - started:.1f} s")
