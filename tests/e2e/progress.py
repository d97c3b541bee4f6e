"""Waiting on progress, not on the clock: a command runs for as long as something it drives still moves.

On a loaded machine (five test runs on two cores) a build, an `up` or a DAG run may take many times
its usual time. A wall-clock bound turns that into a failure. Here a command fails only when nothing
moved for ``stall`` seconds: neither its own output nor what the caller watches (log files, container
logs). A command that hangs still fails, after ``stall`` seconds of stillness, with its output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from airstack.proc import Result

STALL = 300.0  # seconds of no progress at all before a command counts as hung


def tree_fingerprint(folder: Path) -> tuple[int, int]:
    """How many bytes the files under ``folder`` hold, and their newest change (logs grow, builds write)."""
    size = newest = 0
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            info = path.lstat()
        except OSError:
            continue
        size, newest = size + info.st_size, max(newest, info.st_mtime_ns)
    return size, newest


def run_while_progressing(argv: Sequence[str], *, env: dict[str, str], cwd: Path,
                          progress: Callable[[], object] = lambda: None, stall: float = STALL,
                          poll: float = 2.0) -> Result:
    """Run ``argv`` to its end however long it takes while it progresses; raise AssertionError (its process group
    killed) once neither its output nor ``progress()`` has changed for ``stall`` seconds."""
    with tempfile.TemporaryDirectory() as scratch:
        out_file, err_file = Path(scratch, "out"), Path(scratch, "err")
        with out_file.open("wb") as out, err_file.open("wb") as err:
            process = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err,  # noqa: S603 - argv list
                                       env={**os.environ, **env}, cwd=cwd, start_new_session=True)
        seen, moved = None, time.monotonic()
        try:
            while process.poll() is None:
                now = (out_file.stat().st_size, err_file.stat().st_size, progress())
                if now != seen:
                    seen, moved = now, time.monotonic()
                elif time.monotonic() - moved > stall:
                    raise AssertionError(f"{' '.join(map(str, argv))} made no progress for {stall:g} s:\n"
                                         f"{out_file.read_text(errors='replace')[-3000:]}\n"
                                         f"{err_file.read_text(errors='replace')[-3000:]}")
                time.sleep(poll)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return Result(tuple(map(str, argv)), process.returncode, out_file.read_text(errors="replace"),
                      err_file.read_text(errors="replace"))
