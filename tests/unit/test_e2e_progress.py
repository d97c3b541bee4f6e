"""The e2e tests' wait on progress (tests/e2e/progress.py): slow is fine while something moves; still is a hang."""

from __future__ import annotations

import itertools
import os
import sys

import pytest

from tests.e2e.progress import run_while_progressing, tree_fingerprint


def test_a_command_slower_than_the_stall_bound_finishes_while_something_moves(tmp_path):
    ticks = itertools.count()  # what the caller watches moves at every look
    done = run_while_progressing([sys.executable, "-c", "import time; time.sleep(2); print('done')"], env={},
                                 cwd=tmp_path, progress=lambda: next(ticks), stall=0.2, poll=0.05)
    assert (done.returncode, done.stdout) == (0, "done\n")


def test_a_command_where_nothing_moves_fails_and_is_stopped(tmp_path):
    pid_file = tmp_path / "pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    ticks = itertools.count()  # moving until the child has written its pid, then still
    with pytest.raises(AssertionError, match="made no progress for 0.5 s"):
        run_while_progressing([sys.executable, "-c", script], env={}, cwd=tmp_path,
                              progress=lambda: pid_file.exists() or next(ticks), stall=0.5, poll=0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_folder_moves_when_a_file_in_it_grows(tmp_path):
    before = tree_fingerprint(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "up.log").write_text("a line\n")
    assert tree_fingerprint(tmp_path) != before and tree_fingerprint(tmp_path / "missing") == (0, 0)
