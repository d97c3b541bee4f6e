"""A Docker daemon that answers but cannot have an image (issue 23: a laptop behind a corporate proxy).

The image names here do not exist anywhere (``airstack-test/missing:1``): this daemon has none of them and no
registry gives them, so each run is what a daemon without registry access sees for ``postgres:15``. The test
Postgres falls back to the next provider and ``up`` to the native runtime, each with one line; only an
explicit request for Docker fails, once.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest

from airstack import paths, proc
from airstack.errors import LocalEnvError
from airstack.external_images import unobtainable
from airstack.localenv.config import LocalConfig
from airstack.localenv.runtime import choose_runtime

pytestmark = pytest.mark.docker

MISSING = "airstack-test/missing:1"
CASE = "tests/postgres_case.py"  # two tests on the session's Postgres


def _session(**env: str) -> proc.Result:
    """A whole pytest session over the two Postgres tests, as `nox -s test` runs them (no provider forced)."""
    return proc.run([sys.executable, "-m", "pytest", CASE, "-p", "no:cacheprovider", "-p", "no:xdist", "-rA"],
                    env={"AIRSTACK_TEST_POSTGRES": "", "AIRSTACK_TEST_POSTGRES_DSN": "",
                         "AIRSTACK_POSTGRES_IMAGE": MISSING, **env},
                    cwd=paths.repo_root(), check=False, timeout=300)


def test_an_image_the_daemon_cannot_have_says_which_and_why():
    missing = unobtainable("postgres", {"AIRSTACK_POSTGRES_IMAGE": MISSING})
    assert missing is not None and missing.ref == MISSING and missing.env == "AIRSTACK_POSTGRES_IMAGE"
    assert missing.why.startswith("failed: ")  # the daemon's own answer to the pull follows
    assert str(missing).startswith(f"image {MISSING} is not on this Docker daemon, and pulling it failed: ")


@pytest.fixture()
def silent_registry():
    """A registry address that accepts connections and never answers (a proxy that hangs)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in accepted:  # the daemon's pull fails now, and its waiting thread ends
        connection.close()


def test_a_pull_that_hangs_is_given_up_after_its_wait(silent_registry):
    started = time.monotonic()
    missing = unobtainable("postgres", {"AIRSTACK_POSTGRES_IMAGE": f"{silent_registry}/postgres:15"}, wait=1.0)
    assert time.monotonic() - started < 5  # the daemon itself would wait about 25 s here
    assert missing is not None and missing.why == "did not finish in 1 s"


def test_the_test_session_falls_back_with_one_line():
    result = _session()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
    (header,) = [line for line in result.stdout.splitlines() if line.startswith("postgres provider:")]
    assert header.startswith(("postgres provider: embedded (", "postgres provider: pgserver (")), header
    assert f"not a container: image {MISSING} is not on this Docker daemon, and pulling it failed" in header
    assert header.endswith("set AIRSTACK_POSTGRES_IMAGE to a mirror or a local image to use Docker")
    assert result.stdout.count(MISSING) == 1, result.stdout  # said once, not per test


def test_a_requested_container_fails_the_session_once():
    result = _session(AIRSTACK_TEST_POSTGRES="container")
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    (line,) = output.strip().splitlines()  # the whole output: one line, before any test, no traceback
    assert line.startswith(f"Exit: postgres: AIRSTACK_TEST_POSTGRES=container was requested but image {MISSING} "
                           "is not on this Docker daemon"), line
    assert line.endswith("set AIRSTACK_POSTGRES_IMAGE to a mirror or a local image to use Docker")


def test_up_chooses_the_native_runtime_saying_why(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRSTACK_PYTHON_IMAGE", MISSING)
    runtime, why = choose_runtime(None, LocalConfig(tmp_path))
    assert runtime.name == "native"
    assert why.startswith("native (a Docker daemon answers, but image") and MISSING in why, why
    assert "AIRSTACK_PYTHON_IMAGE" in why and "\n" not in why
    with pytest.raises(LocalEnvError, match=rf"^--runtime docker: .*{MISSING}.*--runtime native`$"):
        choose_runtime("docker", LocalConfig(tmp_path))
