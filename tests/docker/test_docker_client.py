"""airstack.docker_client on a real daemon: what the facade does, and the errors a user sees when it cannot."""

from __future__ import annotations

import uuid

import pytest

from airstack.docker_client import connect
from airstack.errors import DockerError, DockerNotFoundError, DockerRefusedError
from tests.helpers import python_base_or_skip

pytestmark = pytest.mark.docker
LABEL = f"airstack.test=docker-client-{uuid.uuid4().hex[:8]}"  # this process's own (xdist runs several)


@pytest.fixture()
def docker():
    client = connect()
    yield client
    client.remove_containers(LABEL)
    client.close()


def _name() -> str:
    return f"airstack-test-{uuid.uuid4().hex[:8]}"


def test_missing_image_names_the_image_and_what_to_do(docker):
    missing, name = "airstack-test/no-such-image:0123456789ab", _name()
    assert not docker.image_exists(missing) and docker.inspect_image(missing) is None
    with pytest.raises(DockerNotFoundError) as caught:
        docker.create_container(missing, name=name, mounts=[], host={}, command=["true"])
    assert str(caught.value) == (
        f"creating container {name} from {missing}: not found (ImageNotFound: No such image: {missing}); "
        "check the name: `docker images` and `docker ps -a` list what this daemon has")


def test_an_image_that_cannot_be_pulled_says_which_and_what_to_set(docker):
    missing = "127.0.0.1:9/airstack-test/no-such-image:0"  # nothing listens on port 9: the pull is refused at once
    with pytest.raises(DockerError) as caught:
        docker.ensure_image(missing, "set AIRSTACK_PYTHON_IMAGE to one this daemon has or can pull")
    message = str(caught.value)
    assert message.startswith(f"image {missing} is not on this Docker daemon, and pulling it failed: "), message
    assert message.endswith("; set AIRSTACK_PYTHON_IMAGE to one this daemon has or can pull"), message
    assert "\n" not in message


def test_missing_container_is_none_or_a_clear_error(docker):
    name = _name()
    assert docker.find_container(name) is None and docker.logs_tail(name, 5) is None
    assert docker.process_count(name) is None and docker.stop_container(name, 1) is False
    docker.remove_container(name)  # nothing to remove: no error
    with pytest.raises(DockerNotFoundError, match=f"^running true in container {name}: not found \\(NotFound: "):
        docker.exec_run(name, ["true"])


def test_container_round_trip_and_a_name_conflict(docker):
    base, name = python_base_or_skip(), _name()
    cid = docker.run_container(base, name=name, command=["sleep", "60"], labels=dict([LABEL.split("=")]))
    state = docker.find_container(name)
    assert state.id == cid and state.name == name and state.running and state.started
    assert docker.exec_with_stdin(name, ["sh", "-c", "cat > /tmp/in"], b"from stdin\n") == 0
    assert docker.exec_run(name, ["cat", "/tmp/in"]) == (0, b"from stdin\n", b"")
    assert docker.process_count(name) >= 1
    with pytest.raises(DockerRefusedError, match=f"^starting container {name} from {base}: the Docker daemon "
                                                 "refused \\(APIError: Conflict.*already in use"):
        docker.run_container(base, name=name, command=["true"], labels=dict([LABEL.split("=")]))
    assert docker.stop_container(name, 1) is True and not docker.find_container(name).running
    docker.remove_containers(LABEL)
    assert docker.find_container(name) is None
