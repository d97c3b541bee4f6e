import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airstack import proc
from airstack.errors import CommandFailedError, CommandNotFoundError


def test_stdin_reaches_the_program_not_argv():
    result = proc.run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"], input="secret")
    assert result.stdout.strip() == "SECRET"
    assert "secret" not in " ".join(result.argv)


def test_failure_names_the_program_and_last_stderr_line():
    with pytest.raises(CommandFailedError) as excinfo:
        proc.run([sys.executable, "-c", "import sys; sys.stderr.write('first\\nlast words\\n'); sys.exit(3)"],
                 what="the helper")
    assert str(excinfo.value) == "the helper failed (exit 3): last words"
    assert excinfo.value.returncode == 3


def test_no_check_returns_the_code():
    assert proc.run([sys.executable, "-c", "raise SystemExit(4)"], check=False).returncode == 4


def test_missing_program():
    with pytest.raises(CommandNotFoundError, match="no-such-program"):
        proc.run(["no-such-program-xyz"])
    with pytest.raises(CommandNotFoundError, match="install it"):
        proc.which("no-such-program-xyz", "install it")


def test_timeout_is_a_clear_error():
    with pytest.raises(CommandFailedError, match="did not finish within 0.2 s"):
        proc.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)


def test_format_command_redacts_secret_env():
    text = proc.format_command(["helm", "upgrade", "my release"], {"TOKEN": "abc", "MODE": "x y"}, secret_env=["TOKEN"])
    assert text == "MODE='x y' TOKEN=*** helm upgrade 'my release'"


def test_format_command_redacts_what_is_named_as_a_secret_even_unlisted():
    env = {"AIRFLOW__CORE__FERNET_KEY": "f", "AIRFLOW__API_AUTH__JWT_SECRET": "j",
           "AIRFLOW_CONN_DB": "postgres://u:p@h", "AIRSTACK_LOCAL_PROJECTS": "{}", "PGPASSWORD": "p",
           "AIRFLOW_HOME": "/home/a"}
    assert proc.format_command(["airflow", "scheduler"], env) == (
        "AIRFLOW_CONN_DB=*** AIRFLOW_HOME=/home/a AIRFLOW__API_AUTH__JWT_SECRET=*** AIRFLOW__CORE__FERNET_KEY=*** "
        "AIRSTACK_LOCAL_PROJECTS=*** PGPASSWORD=*** airflow scheduler")


# ------------------------------------------------------------------------ bounded children --
def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _pid_from(path: Path, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")


# A stand-in for sops: reads its input from stdin, notes its pid, then takes (far) too long.
SOPS_LIKE = ("import os, sys, time; sys.stdin.read(); open(sys.argv[1], 'w').write(str(os.getpid())); "
             "time.sleep(120)")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_parent_leaves_no_orphan(tmp_path):
    child_pid = tmp_path / "child.pid"
    parent = (f"from airstack import proc; proc.run([{sys.executable!r}, '-c', {SOPS_LIKE!r}, {str(child_pid)!r}], "
              "input='plaintext on a pipe', timeout=300)")
    process = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    try:
        pid = _pid_from(child_pid)
        assert _alive(pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert _wait_gone(pid), f"child {pid} outlived its killed parent"
    finally:
        process.kill()
        process.wait()


def test_timeout_kills_the_whole_process_group(tmp_path):
    grandchild_pid = tmp_path / "grandchild.pid"
    spawner = ("import subprocess, sys, time; "
               f"p = subprocess.Popen([sys.executable, '-c', {SOPS_LIKE!r}, {str(grandchild_pid)!r}], "
               "stdin=subprocess.DEVNULL); time.sleep(120)")
    with pytest.raises(CommandFailedError, match="did not finish within 1 s"):
        proc.run([sys.executable, "-c", spawner], timeout=1, what="spawner")
    if grandchild_pid.is_file():  # it may not even have started within the second
        assert _wait_gone(int(grandchild_pid.read_text()))


def test_children_get_only_the_environment_they_need(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "not-for-children")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", "/keys.txt")
    show = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
    narrowed = json.loads(proc.run(show, inherit=("SOPS_*",), env={"EXTRA": "1"}).stdout)
    assert "AIRFLOW__CORE__FERNET_KEY" not in narrowed
    assert narrowed["SOPS_AGE_KEY_FILE"] == "/keys.txt" and narrowed["EXTRA"] == "1"
    assert narrowed["PATH"] == os.environ["PATH"]
    everything = json.loads(proc.run(show).stdout)
    assert everything["AIRFLOW__CORE__FERNET_KEY"] == "not-for-children"


def test_a_child_has_no_stdin_unless_given_one():
    assert proc.run([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"]).stdout.strip() == "''"
