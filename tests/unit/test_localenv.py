import io
import socket
import tarfile
from pathlib import Path

import pytest

from airstack.docker_client import optional_client
from airstack.localenv.config import LocalConfig, _reachable
from airstack.localenv.docker_runtime import _secrets_tar, database_password
from airstack.localenv.main import main
from airstack.localenv.native import NativeRuntime
from airstack.postgres import Binaries, find_bin_dir, find_binaries


def test_database_password_is_derived_not_stored():
    assert database_password("a" * 48) == database_password("a" * 48)
    assert database_password("a" * 48) != database_password("b" * 48)
    assert len(database_password("a" * 48)) == 32


def test_secrets_tar_ends_with_ready_and_keeps_modes():
    with tarfile.open(fileobj=io.BytesIO(_secrets_tar({"fernet_key": "k"}, uid=50000, mode=0o400))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["fernet_key", "ready"]  # the wrappers wait for `ready`
        assert {(m.uid, m.mode) for m in members} == {(50000, 0o400)}
        assert tar.extractfile("fernet_key").read() == b"k"


def test_services_listen_on_loopback_only():
    config = LocalConfig(Path("/repo"), api_port=8123, postgres_port=5439)
    assert config.service_argv("airflow", "api-server") == ["airflow", "api-server", "--host", "127.0.0.1",
                                                            "--port", "8123"]
    assert config.service_argv("airflow", "scheduler") == ["airflow", "scheduler", "--skip-serve-logs"]
    assert config.service_argv("airflow", "triggerer") == ["airflow", "triggerer", "--skip-serve-logs"]
    env = config.airflow_env({"AIRFLOW__CORE__FERNET_KEY": "x"})
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8123/execution/"
    assert "host=/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]  # the metadata DB over a unix socket


def test_reachable(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "inner").mkdir()
    assert _reachable(private / "inner", uid=private.stat().st_uid, gid=-1)
    assert not _reachable(private / "inner", uid=private.stat().st_uid + 12345, gid=-1)


def test_native_runtime_takes_the_system_binaries_else_the_wheels(tmp_path):
    """One choice for the tests and the native runtime (airstack.postgres.find_binaries): on this machine the
    system's PostgreSQL when installed, else the pgserver wheel's (in the dev lock, so always there)."""
    wheel = find_binaries(path="/nonexistent", extra_globs=())
    assert wheel is not None and wheel.from_wheel
    system = find_bin_dir()
    runtime = NativeRuntime(LocalConfig(tmp_path))
    assert runtime.binaries == (Binaries(system, from_wheel=False) if system else wheel)
    assert str(runtime.binaries.bin_dir) in runtime.postgres_source
    assert "pgserver wheel" in NativeRuntime(LocalConfig(tmp_path), wheel).postgres_source


@pytest.fixture(params=["missing", "dead"])
def no_docker(request, monkeypatch, tmp_path):
    """No daemon answers: DOCKER_HOST names a socket that does not exist, or one where nothing listens."""
    path = tmp_path / "docker.sock"
    if request.param == "dead":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()  # the file stays; connecting to it is refused
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")


def test_optional_client_without_a_daemon_is_none(no_docker):
    assert optional_client(timeout=1) is None


def test_clean_without_docker(tmp_path, monkeypatch, capsys, no_docker):
    """`nox -s clean` on a machine without Docker: removes the native env's folders, says nothing about Docker."""
    monkeypatch.setenv("AIRSTACK_ROOT", str(tmp_path))
    state = tmp_path / ".airstack" / "local" / "native"
    (state / "logs").mkdir(parents=True)
    (tmp_path / ".airstack" / "local" / "runtime").write_text("native")
    assert main(["clean", "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"nothing was running; removed {state}"
    assert not state.exists() and not (tmp_path / ".airstack" / "local" / "runtime").exists()


def test_a_failed_runs_log_gives_the_exception_origin_and_last_lines(tmp_path):
    """`nox -s run`: the structured task log the REST API returns (shape recorded from Airflow 3.3.2)."""
    from airstack.localenv.runs import failure_from_log

    dags = tmp_path / "dags"
    frames = [{"filename": "/venv/airflow/sdk/execution_time/task_runner.py", "lineno": 1579, "name": "_run"},
              {"filename": f"{dags}/fails.py", "lineno": 10, "name": "validate"}]
    messages = [
        {"event": "::group::Log message source details"}, {"event": "/logs/attempt=1.log"}, {"event": "::endgroup::"},
        {"timestamp": "t0", "event": "::group::Pre Execute", "level": "info", "logger": "task"},
        {"timestamp": "t1", "event": "DAG bundles loaded: dags-folder", "level": "info", "logger": "airflow"},
        {"timestamp": "t2", "event": "::endgroup::", "level": "info", "logger": "task"},
        {"timestamp": "t3", "event": "validating 3 rows", "level": "info", "logger": "task.stdout"},
        {"timestamp": "t4", "event": "Task failed with exception", "level": "error", "logger": "task",
         "error_detail": [{"exc_type": "ValueError", "exc_value": "expected 4 rows, got 3", "frames": frames[:1]},
                          {"exc_type": "KeyError", "exc_value": "'rows'", "frames": frames, "is_cause": True}]},
        {"timestamp": "t5", "event": "::group::Post Execute", "level": "info", "logger": "task"},
    ]
    failure = failure_from_log("validate", "failed", messages, dags)
    assert failure.error == "ValueError: expected 4 rows, got 3"
    assert failure.where == "dags/fails.py, line 10, in validate"
    assert failure.log_tail == ["INFO DAG bundles loaded: dags-folder", "validating 3 rows",
                                "ERROR Task failed with exception: ValueError: expected 4 rows, got 3"]
    assert failure_from_log("validate", "failed", messages, dags, lines=1).log_tail == failure.log_tail[-1:]
    assert failure_from_log("t", "failed", [], dags).error == ""  # no log (yet): the state alone
