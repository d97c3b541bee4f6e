import sys

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
