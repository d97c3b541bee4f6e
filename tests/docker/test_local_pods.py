"""The local pod runner on a real Docker daemon: secrets reach the process, never the container's configuration."""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest

from airstack.docker_client import get_client
from airstack.localenv import pods as local_pods
from tests.helpers import python_base_or_skip

pytestmark = pytest.mark.docker
PRINT_FINGERPRINT = "import hashlib, os; print(hashlib.sha256(os.environ['TOKEN'].encode()).hexdigest())"


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, fmt, *args) -> None:
        self.lines.append(fmt % args)


@pytest.fixture()
def pods():
    base = python_base_or_skip()
    runner = local_pods.DockerPods()
    yield runner, base
    runner.remove()


def test_secret_reaches_the_process_but_not_the_container_config(pods):
    runner, base = pods
    token = secrets.token_urlsafe(24)
    container = local_pods.Container(name="secret-check", image=base, command=["python", "-c", PRINT_FINGERPRINT],
                                     args=None, environment={"PLAIN": "visible"}, secret_environment={"TOKEN": token},
                                     labels={"airstack.test": "local-pods"})
    log = Lines()
    assert runner.run(container, log) == 0
    assert hashlib.sha256(token.encode()).hexdigest() in log.lines
    attrs = get_client().api.inspect_container(runner.container_id)
    dumped = json.dumps(attrs)
    assert token not in dumped, "the secret is in the container's configuration (dockerd stores it on disk)"
    assert "PLAIN=visible" in attrs["Config"]["Env"]  # ConfigMap values are plain environment


def test_exit_code_fails_the_pod(pods):
    runner, base = pods
    container = local_pods.Container(name="exit-3", image=base, command=["python", "-c", "print('bye'); exit(3)"],
                                     args=None)
    log = Lines()
    assert runner.run(container, log) == 3
    assert log.lines == ["bye"]


def test_missing_image_names_the_build_command(pods):
    runner, _ = pods
    with pytest.raises(local_pods.LocalPodError, match=r"image 127.0.0.1:5000/x/no-such-image:0123456789ab is not "
                       r"on this Docker daemon: build it with `nox -s build-images -- no-such-image`"):
        runner.image_config("127.0.0.1:5000/x/no-such-image:0123456789ab")
