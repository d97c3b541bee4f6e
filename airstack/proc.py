"""The one place that starts external programs.

Every program gets an argv list and never goes through a shell. Secrets travel on stdin
(``input=``), never in argv. Debug logging shows a copy-pasteable command line, with the
values of environment variables named in ``secret_env`` redacted.

Children are bounded:
- :func:`run` gives every child a timeout (:data:`DEFAULT_TIMEOUT` unless the caller gives
  one) and starts it in a process group of its own; on timeout, on an exception or on Ctrl-C
  in this process, the whole group is killed.
- Every child dies with this process (Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the
  child before ``exec``, and a check that the parent had not died already). Services that
  must outlive the command (``nox -s up``) are the exception: :func:`start` without
  ``die_with_parent``.
- ``inherit`` limits what a child gets from this process's environment to the names it
  needs (plus :data:`BASE_ENV`), so that keys set for Airflow in ``os.environ`` never reach
  a program that has no use for them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shlex
import signal
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from airstack.errors import CommandFailedError, CommandNotFoundError

log = logging.getLogger(__name__)

# Environment variables whose values never appear in a logged command line, whoever forgets to name them:
# Airflow's keys and connections (AIRFLOW__CORE__FERNET_KEY, AIRFLOW_CONN_*), tokens, passwords, and the
# local env's project settings.
SECRET_NAME = re.compile(r"KEY|SECRET|PASSW|TOKEN|CONN|CREDENTIAL|PROJECTS", re.IGNORECASE)
DEFAULT_TIMEOUT = 600.0  # seconds; a child that may take longer says so (timeout=...)
# What every child gets from this process's environment when ``inherit`` narrows it.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "TERM")
_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # looked up once, before any fork: the child only calls it


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn``: the child gets SIGKILL when this process ends (Linux), or exits if it already has."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def setup() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return setup


def child_env(env: Mapping[str, str] | None = None, inherit: Sequence[str] | None = None) -> dict[str, str] | None:
    """The environment a child gets: all of ours (``inherit`` None) or only ``BASE_ENV`` and ``inherit``, plus ``env``.

    Names in ``inherit`` ending in ``*`` are prefixes (``SOPS_*``). None means "inherit
    everything unchanged" (``subprocess``' own default).
    """
    if inherit is None:
        return {**os.environ, **env} if env else None
    names = (*BASE_ENV, *inherit)
    exact = {n for n in names if not n.endswith("*")}
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    kept = {k: v for k, v in os.environ.items() if k in exact or k.startswith(prefixes)}
    return {**kept, **(env or {})}


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group ``process`` leads (it was started in a session of its own)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
    """A shell-quoted, copy-pasteable rendering of a command. The values of the variables in ``secret_env``,
    and of any whose name says it holds a secret (``*KEY*``, ``*SECRET*``, ``*CONN*``...), are redacted."""
    prefix = ""
    if env:
        prefix = " ".join(
            f"{k}={'***' if k in secret_env or SECRET_NAME.search(k) else shlex.quote(v)}"
            for k, v in sorted(env.items())
        ) + " "
    return prefix + shlex.join(argv)


def run(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    inherit: Sequence[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    secret_env: Sequence[str] = (),
    what: str | None = None,
) -> Result:
    """Run ``argv`` to completion and capture its output.

    ``env`` is added to the current environment (narrowed to ``inherit`` when given, see
    :func:`child_env`). ``input`` may be text or bytes (a tar for ``docker build -``); without
    it the child's stdin is empty. Output is always text. The child runs in a process group
    of its own, which is killed after ``timeout`` seconds, and dies with this process. With
    ``check``, a non-zero exit raises :class:`CommandFailedError` naming ``what`` (default:
    the program) and the last line of its stderr.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s", format_command(argv, env, secret_env))
    try:
        process = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=child_env(env, inherit), cwd=cwd, start_new_session=True,
            preexec_fn=_die_with_parent())
    except FileNotFoundError:
        raise CommandNotFoundError(f"`{argv[0]}` was not found") from None
    try:
        stdout, stderr = process.communicate(input.encode() if isinstance(input, str) else input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        process.communicate()
        raise CommandFailedError(f"{what or os.path.basename(argv[0])} did not finish within {timeout:g} s "
                                 "(stopped, with its process group)", returncode=-1) from None
    except BaseException:  # Ctrl-C, or an error here: the child does not outlive the call
        kill_group(process)
        process.wait()
        raise
    result = Result(tuple(argv), process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
    if check and process.returncode != 0:
        tail = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or [""])[-1]
        raise CommandFailedError(
            f"{what or os.path.basename(argv[0])} failed (exit {process.returncode}): {tail}",
            returncode=process.returncode,
            stderr=result.stderr,
        )
    return result


def start(argv: Sequence[str], *, log_file: os.PathLike[str], env: Mapping[str, str] | None = None,
          cwd: str | os.PathLike[str] | None = None, talk: bool = False,
          die_with_parent: bool = False) -> subprocess.Popen:
    """Start a long-running program in the background (its own process group), output appended to ``log_file``.

    With ``talk``, its stdin and stdout are pipes to this process (text, line-buffered) and
    only its stderr goes to ``log_file``. Services of the local environment outlive the
    command that starts them; a program that belongs to this process (a test lane) passes
    ``die_with_parent``. :func:`stop` ends it.
    """
    argv = [str(a) for a in argv]
    log.debug("start: %s", format_command(argv, env))
    full_env = child_env(env)
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True, "bufsize": 1} if talk \
        else {"stdin": subprocess.DEVNULL, "stdout": None}
    with open(log_file, "ab") as out:
        pipes["stdout"] = pipes["stdout"] or out
        try:
            return subprocess.Popen(argv, env=full_env, cwd=cwd,  # noqa: S603
                                    stderr=out if talk else subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent() if die_with_parent else None, **pipes)
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


def run_streaming(argv: Sequence[str], *, env: Mapping[str, str] | None = None, inherit: Sequence[str] | None = None,
                  cwd: str | os.PathLike[str] | None = None, timeout: float | None = None) -> int:
    """Run ``argv`` with the terminal attached (output streams through); return its exit code.

    The child stays in the terminal's process group (an editor must read the keyboard, and
    Ctrl-C reaches it), and dies with this process. ``timeout`` is for non-interactive
    programs; an editor or a shell has none.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s", format_command(argv, env))
    try:
        process = subprocess.Popen(argv, env=child_env(env, inherit), cwd=cwd,  # noqa: S603 - argv list, no shell
                                   preexec_fn=_die_with_parent())
    except FileNotFoundError:
        raise CommandNotFoundError(f"`{argv[0]}` was not found") from None
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise CommandFailedError(f"{os.path.basename(argv[0])} did not finish within {timeout:g} s (stopped)",
                                 returncode=-1) from None
    except BaseException:
        process.kill()
        process.wait()
        raise
