"""The one place that starts external programs.

Every program gets an argv list and never goes through a shell. Secrets travel on stdin
(``input=``), never in argv. Debug logging shows a copy-pasteable command line, with the
values of environment variables named in ``secret_env`` redacted.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from airstack.errors import CommandFailedError, CommandNotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def which(program: str, hint: str = "") -> str:
    """Absolute path of ``program`` on PATH, or a :class:`CommandNotFoundError` with ``hint``."""
    path = shutil.which(program)
    if path is None:
        raise CommandNotFoundError(f"`{program}` was not found on PATH" + (f": {hint}" if hint else ""))
    return path


def format_command(argv: Sequence[str], env: Mapping[str, str] | None = None, secret_env: Sequence[str] = ()) -> str:
    """A shell-quoted, copy-pasteable rendering of a command; secret env values are redacted."""
    prefix = ""
    if env:
        prefix = " ".join(
            f"{k}={'***' if k in secret_env else shlex.quote(v)}" for k, v in sorted(env.items())
        ) + " "
    return prefix + shlex.join(argv)


def run(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    timeout: float | None = None,
    secret_env: Sequence[str] = (),
    what: str | None = None,
) -> Result:
    """Run ``argv`` to completion and capture its output.

    ``env`` is added to the current environment. ``input`` may be text or bytes (a tar for
    ``docker build -``); output is always text. With ``check``, a non-zero exit raises
    :class:`CommandFailedError` naming ``what`` (default: the program) and the last line
    of its stderr.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s", format_command(argv, env, secret_env))
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(  # noqa: S603 - argv list, no shell
            argv,
            input=input.encode() if isinstance(input, str) else input,
            env=full_env,
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise CommandNotFoundError(f"`{argv[0]}` was not found") from None
    except subprocess.TimeoutExpired:
        raise CommandFailedError(f"{what or argv[0]} did not finish within {timeout:g} s", returncode=-1) from None
    result = Result(tuple(argv), proc.returncode, proc.stdout.decode(errors="replace"),
                    proc.stderr.decode(errors="replace"))
    if check and proc.returncode != 0:
        tail = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or [""])[-1]
        raise CommandFailedError(
            f"{what or os.path.basename(argv[0])} failed (exit {proc.returncode}): {tail}",
            returncode=proc.returncode,
            stderr=result.stderr,
        )
    return result


def start(argv: Sequence[str], *, log_file: os.PathLike[str], env: Mapping[str, str] | None = None,
          cwd: str | os.PathLike[str] | None = None, talk: bool = False) -> subprocess.Popen:
    """Start a long-running program in the background, its output appended to ``log_file``.

    With ``talk``, its stdin and stdout are pipes to this process (text, line-buffered) and
    only its stderr goes to ``log_file``.
    """
    argv = [str(a) for a in argv]
    log.debug("start: %s", format_command(argv, env))
    full_env = {**os.environ, **env} if env else None
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True, "bufsize": 1} if talk \
        else {"stdin": subprocess.DEVNULL, "stdout": None}
    with open(log_file, "ab") as out:
        pipes["stdout"] = pipes["stdout"] or out
        try:
            return subprocess.Popen(argv, env=full_env, cwd=cwd,  # noqa: S603
                                    stderr=out if talk else subprocess.STDOUT, start_new_session=True, **pipes)
        except FileNotFoundError:
            raise CommandNotFoundError(f"`{argv[0]}` was not found") from None


def stop(process: subprocess.Popen, timeout: float = 10.0, group: bool = False) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code.

    With ``group``, the whole process group that :func:`start` created gets the signals
    (programs such as `airflow standalone` start children of their own).
    """
    def send(sig: int) -> None:
        try:
            os.killpg(process.pid, sig) if group else process.send_signal(sig)
        except ProcessLookupError:
            pass

    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            code = process.wait()
    else:
        code = process.wait()
    if group:
        send(signal.SIGKILL)  # stragglers left in the group
    return code


def run_streaming(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                  cwd: str | os.PathLike[str] | None = None) -> int:
    """Run ``argv`` with the terminal attached (output streams through); return its exit code."""
    argv = [str(a) for a in argv]
    log.debug("run: %s", format_command(argv, env))
    full_env = {**os.environ, **env} if env else None
    try:
        return subprocess.call(argv, env=full_env, cwd=cwd)  # noqa: S603 - argv list, no shell
    except FileNotFoundError:
        raise CommandNotFoundError(f"`{argv[0]}` was not found") from None
