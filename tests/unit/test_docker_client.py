"""airstack.docker_client turns every Docker SDK error into an AirstackError that says what failed and what to do.

The exceptions are the SDK's own types (docker.errors, requests, urllib3), built as the SDK builds them;
the client-side cases talk to a real socket nobody listens on.
"""

from __future__ import annotations

import json
import socket

import pytest
import requests
import urllib3
from docker import errors

from airstack.docker_client import Docker, connect, dockerignore_matcher, get_client, translate, translated
from airstack.errors import (AirstackError, DockerError, DockerNotAvailableError, DockerNotFoundError,
                             DockerRefusedError)


def _response(status: int, message: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, json.dumps({"message": message}).encode()
    return response


def _api_error(status: int, message: str) -> errors.APIError:
    """What the SDK raises for an HTTP error from the daemon (its own factory picks the class)."""
    try:
        errors.create_api_error_from_http_exception(requests.HTTPError(response=_response(status, message)))
    except errors.APIError as exc:
        return exc
    raise AssertionError("the SDK's factory raised nothing")


@pytest.fixture()
def dead_socket(tmp_path, monkeypatch):
    """A unix socket that exists but where no daemon listens (connection refused)."""
    path = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    return f"unix://{path}"


def test_missing_image_names_the_image_and_what_to_do():
    exc = _api_error(404, "No such image: etl-basic:0123456789ab")
    assert type(exc) is errors.ImageNotFound
    error = translate(exc, "creating container p from etl-basic:0123456789ab", "build it: nox -s build-images")
    assert isinstance(error, DockerNotFoundError) and isinstance(error, AirstackError)
    assert str(error) == ("creating container p from etl-basic:0123456789ab: not found (ImageNotFound: No such "
                          "image: etl-basic:0123456789ab); build it: nox -s build-images")


def test_missing_container_without_a_hint_says_how_to_look():
    error = translate(_api_error(404, "No such container: airstack-x"), "stopping container airstack-x")
    assert isinstance(error, DockerNotFoundError)
    assert str(error).startswith("stopping container airstack-x: not found (NotFound: No such container: airstack-x)")
    assert "`docker ps -a`" in str(error)


def test_refusal_carries_the_daemons_explanation():
    exc = _api_error(409, 'Conflict. The container name "/airstack-a-postgres" is already in use')
    assert type(exc) is errors.APIError
    error = translate(exc, "starting container airstack-a-postgres from local/postgres:15")
    assert isinstance(error, DockerRefusedError)
    assert 'the Docker daemon refused (APIError: Conflict. The container name "/airstack-a-postgres" is already ' \
           "in use); see the daemon's log" in str(error)


@pytest.mark.parametrize("exc", [
    errors.DockerException("Error while fetching server API version: ('Connection aborted.', "
                           "FileNotFoundError(2, 'No such file or directory'))"),
    requests.exceptions.ConnectionError("('Connection aborted.', ConnectionRefusedError(111, 'Connection refused'))"),
    urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(0 bytes read)"),
    BrokenPipeError(32, "Broken pipe"),
], ids=["from_env", "requests", "urllib3", "socket"])
def test_a_daemon_that_does_not_answer_says_where_and_how_to_start_it(exc, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/nowhere.sock")
    error = translate(exc, "building etl-basic:abc")
    assert isinstance(error, DockerNotAvailableError)
    assert str(error).startswith("building etl-basic:abc: no Docker daemon answers at unix:///run/nowhere.sock (")
    assert str(error).endswith("start Docker (here: `docker-offline start`), or set DOCKER_HOST to a daemon that runs")


def test_a_timeout_is_not_confused_with_no_daemon():
    error = translate(requests.exceptions.ReadTimeout("Read timed out. (read timeout=5)"), "pushing r/x:1")
    assert isinstance(error, DockerNotAvailableError) and "did not answer in time" in str(error)


def test_other_sdk_errors_keep_their_detail():
    error = translate(errors.InvalidArgument("Invalid mount type: 'nfs'"), "creating container p from i", "fix it")
    assert type(error) is DockerError and str(error) == "creating container p from i: InvalidArgument: Invalid " \
                                                        "mount type: 'nfs'; fix it"


def test_translated_raises_ours_without_the_sdks_chain_and_lets_others_through():
    with pytest.raises(DockerNotFoundError) as caught:
        with translated("inspecting image x"):
            raise _api_error(404, "No such image: x")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # one line for the user
    with pytest.raises(ValueError):  # not the SDK's: untouched
        with translated("inspecting image x"):
            raise ValueError("a bug")
    ours = DockerRefusedError("pushing r/x:1 failed: denied")
    with pytest.raises(DockerRefusedError) as caught:
        with translated("pushing r/x:1"):
            raise ours
    assert caught.value is ours


def test_no_daemon_at_a_dead_socket(dead_socket):
    with pytest.raises(DockerNotAvailableError, match=f"^no Docker daemon answers at {dead_socket} "):
        connect(timeout=1)
    with pytest.raises(DockerNotAvailableError):
        get_client(timeout=1)


def test_a_daemon_lost_mid_use_is_no_daemon(dead_socket):
    """A client made while the daemon answered, used after it went away: the SDK's requests error, translated."""
    import docker

    sdk = docker.DockerClient(base_url=dead_socket, version="1.41", timeout=1)  # no version probe: no call yet
    with pytest.raises(DockerNotAvailableError, match=f"^inspecting container airstack-x-postgres: no Docker "
                                                      f"daemon answers at {dead_socket} \\(ConnectionError: "):
        Docker(sdk).find_container("airstack-x-postgres")


def test_dockerignore_matcher_is_the_sdks_semantics():
    ignored = dockerignore_matcher(["**/*.log", "data", "!data/keep.txt"])
    assert ignored("a/b/c.log") and ignored("data/x.csv")
    assert not ignored("data/keep.txt") and not ignored("src/main.py")
    assert not dockerignore_matcher([])("anything")


def test_only_docker_client_imports_the_sdk():
    """Issue 16: docker_client is the only module of the product (airstack/, dags/, plugins/) that imports docker."""
    import ast

    from airstack import paths

    root = paths.repo_root()
    importers = set()
    for path in [p for folder in ("airstack", "dags", "plugins") for p in (root / folder).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n == "docker" or n.startswith("docker.") for n in names):
                importers.add(path.relative_to(root).as_posix())
    assert importers == {"airstack/docker_client.py"}
