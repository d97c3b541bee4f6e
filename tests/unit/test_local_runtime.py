"""Both local runtimes implement airstack.localenv.runtime.Runtime, signature for signature."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from airstack.localenv.config import LocalConfig
from airstack.localenv.docker_runtime import DockerRuntime
from airstack.localenv.native import NativeRuntime
from airstack.errors import LocalEnvError
from airstack.localenv.runtime import Runtime, decide_runtime

MEMBERS = {name: value for name, value in vars(Runtime).items()
           if not name.startswith("_") and (callable(value) or isinstance(value, property))}
DATA = Runtime.__annotations__  # name, config, airflow, stop_seconds


def _runtimes(tmp_path: Path) -> list:
    config = LocalConfig(tmp_path)
    return [NativeRuntime(config), DockerRuntime(config, docker=None)]  # no daemon needed to look at them


def test_the_protocol_is_what_up_uses():
    assert {"start_service", "metadata_dsn", "postgres_source", "stop_services", "check_alive"} <= MEMBERS.keys()
    assert set(DATA) == {"name", "config", "airflow", "stop_seconds"}


@pytest.mark.parametrize("cls", [NativeRuntime, DockerRuntime], ids=lambda c: c.__name__)
@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_each_method_has_the_protocols_signature(cls, member):
    wanted = MEMBERS[member]
    found = inspect.getattr_static(cls, member, None)
    assert found is not None, f"{cls.__name__} has no {member}"
    if isinstance(wanted, property):
        assert isinstance(found, property), f"{cls.__name__}.{member} is not a property"
        wanted, found = wanted.fget, found.fget
    assert inspect.signature(found) == inspect.signature(wanted), \
        f"{cls.__name__}.{member}{inspect.signature(found)} != Runtime.{member}{inspect.signature(wanted)}"


def test_each_runtime_instance_is_a_runtime(tmp_path):
    for runtime in _runtimes(tmp_path):
        assert isinstance(runtime, Runtime)
        for name in DATA:
            assert hasattr(runtime, name), f"{type(runtime).__name__} has no {name}"
        assert runtime.name in ("native", "docker") and runtime.airflow.endswith("airflow")


def test_the_docker_runtime_refuses_the_options_servers(tmp_path):
    with pytest.raises(LocalEnvError, match="run in the native runtime"):
        DockerRuntime(LocalConfig(tmp_path), docker=None).start_service("redis", {}, ["redis-server"])


# Which runtime (pure): a Docker daemon that answers but cannot have the images (issue 23).
NO_PULL = ("image python:3.11-slim-bookworm is not on this Docker daemon, and pulling it failed: no such host; "
           "set AIRSTACK_PYTHON_IMAGE to a mirror or a local image to use Docker")


def test_docker_where_a_daemon_answers_and_has_the_images():
    assert decide_runtime(None, None, "", (True, "")) == ("docker", "a Docker daemon answers")
    assert decide_runtime(None, None, "", (False, "no daemon at /x")) == ("native", "no Docker: no daemon at /x")


def test_a_daemon_that_cannot_have_the_images_falls_back_to_native_saying_why():
    name, why = decide_runtime(None, None, "", (True, ""), NO_PULL)
    assert name == "native"
    assert why == f"a Docker daemon answers, but {NO_PULL}"  # the image, why, and how to have Docker after all


def test_docker_asked_for_but_the_images_cannot_be_had_is_one_line():
    with pytest.raises(LocalEnvError) as raised:
        decide_runtime("docker", None, "", (True, ""), NO_PULL)
    message = str(raised.value)
    assert message == f"--runtime docker: {NO_PULL}; or `nox -s up -- --runtime native`" and "\n" not in message


def test_what_was_asked_or_recorded_comes_before_the_daemon():
    assert decide_runtime("native", None, "", (True, ""), NO_PULL) == ("native", "asked for")
    assert decide_runtime(None, "docker", "", (True, ""))[0] == "docker"  # its data lives there, until `clean`
    assert decide_runtime(None, None, "--celery", (True, "")) == ("native", "--celery run in the native runtime")
