import io
import tarfile
from pathlib import Path

from airstack.localenv.config import LocalConfig, _reachable
from airstack.localenv.docker_runtime import _secrets_tar, database_password


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
