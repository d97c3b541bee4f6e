"""The embedded Postgres tells a port clash from a slow start by facts, and leaves no server behind.

A clash: another process listens on the port (a real listener); the server's log says it could not
bind, and the start is retried on another port in a fresh cluster. A slow start: a real server held
before it runs (its log grows while it waits); it is waited for, never retried.
"""

from __future__ import annotations

import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from airstack.postgres import Binaries, find_bin_dir, find_binaries
from airstack.postgres import embedded as embedded_module
from airstack.postgres.embedded import embedded
from airstack.postgres.sql import connect

from tests.integration.pg_wrappers import processes_under, scratch_folder, server_starts, wrapped_binaries

pytestmark = pytest.mark.skipif(find_bin_dir() is None, reason="no initdb/pg_ctl on this machine")
OLD_FIXED_WAIT = 30  # seconds after which a start used to be taken for a port clash (pg_ctl -w -t 30)


@pytest.fixture()
def scratch(monkeypatch):
    """The clusters are made here (a folder the server's user can enter); nothing may be left in it."""
    with scratch_folder() as folder:
        monkeypatch.setattr(tempfile, "tempdir", str(folder))
        yield folder
        assert not list(folder.glob("airstack-pg-*")), "a cluster folder was left behind"
        assert not processes_under(folder), "a server was left running"


def _answers(dsn: str) -> bool:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    finally:
        conn.close()


def test_a_taken_port_is_retried_on_another_in_a_fresh_cluster(scratch, monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        offered = [taken]  # free_port() offers the taken port first, as when another process binds it meanwhile
        real_free_port = embedded_module.free_port
        monkeypatch.setattr(embedded_module, "free_port", lambda: offered.pop() if offered else real_free_port())
        with embedded(find_binaries()) as server:
            assert urlsplit(server.dsn).port != taken and _answers(server.dsn)
            (cluster,) = scratch.glob("airstack-pg-*")  # the first attempt's folder is gone
            assert "could not bind" not in (cluster / "postgres.log").read_text()  # not the first attempt's cluster
            assert len(processes_under(scratch)) == 1  # one server: the postmaster names its data folder
        assert not offered


def test_a_slow_start_is_waited_for_not_taken_for_a_clash(scratch):
    gate = scratch / "gate"
    bin_dir = wrapped_binaries(scratch, gate=gate)

    def start() -> list[str]:
        with embedded(Binaries(bin_dir, from_wheel=False)) as server:
            assert _answers(server.dsn) and len(processes_under(scratch)) == 1
            return server_starts(scratch)

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(start)
        while not server_starts(scratch) and not future.done():  # the server was started, and is held
            time.sleep(0.1)
        # Held past the fixed wait that used to end a start; while held it writes to its log, as a slow start does.
        time.sleep(OLD_FIXED_WAIT + 5)
        held = server_starts(scratch)
        gate.touch()
        starts = future.result()
    assert len(held) == 1, held  # no second start while the first was slow
    assert starts == held
