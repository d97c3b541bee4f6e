"""Stand-in PostgreSQL binaries for tests: the real ones behind scripts that record each server start
and, with a gate, hold it until the gate file exists (a slow start, for real: the held server writes
to its log while it waits, as a starting server does).

Everything lives in a folder the server's user can enter (the server runs as ``postgres`` when
this is root): :func:`scratch_folder`, outside pytest's private ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from airstack.postgres import find_binaries

POSTGRES = """#!/bin/sh
case "$1" in -V|--version|-C|--describe-config) exec "{real}/postgres" "$@";; esac
echo "$$ $*" >> "{starts}"
{hold}exec "{real}/postgres" "$@"
"""
HOLD = 'while [ ! -e "{gate}" ]; do echo "held until {gate} exists"; sleep 0.2; done\n'


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A folder every user can enter; removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="airstack-pgtest-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wrapped_binaries(folder: Path, gate: Path | None = None) -> Path:
    """A bin folder whose ``postgres`` appends a line to ``folder/starts`` per server start (and waits for
    ``gate`` when given), then runs the real one. ``pg_ctl`` is a copy: it runs the ``postgres`` beside it."""
    real = find_binaries().bin_dir
    bin_dir = folder / "bin"
    bin_dir.mkdir(mode=0o755)
    starts = folder / "starts"
    starts.touch(mode=0o666)
    starts.chmod(0o666)
    (bin_dir / "initdb").write_text(f'#!/bin/sh\nexec "{real}/initdb" "$@"\n')
    hold = HOLD.format(gate=gate) if gate else ""
    (bin_dir / "postgres").write_text(POSTGRES.format(real=real, starts=starts, hold=hold))
    shutil.copy2(real / "pg_ctl", bin_dir / "pg_ctl")
    for name in ("initdb", "postgres", "pg_ctl"):
        (bin_dir / name).chmod(0o755)
    return bin_dir


def server_starts(folder: Path) -> list[str]:
    return (folder / "starts").read_text().splitlines()


def processes_under(folder: Path) -> list[str]:
    """The command lines of running processes that name ``folder`` (a server's ``-D`` names its data folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in command:
            found.append(command)
    return found
