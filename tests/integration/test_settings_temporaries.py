"""A ``settings-keys --rotate-fernet`` killed mid-way (SIGKILL, a real process on real sops) leaves its staging
file ``settings/<env>/.secret.yaml.<pid>.tmp``: git ignores it, and the next run removes it, but never a file
whose writer is still alive."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from airstack.settings import sops, store

PROJECT = Path(__file__).resolve().parents[2]
TRIES = 20


def _rotate(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "airstack.settings", "keys", "local", "--rotate-fernet"],
                            cwd=PROJECT, env={**os.environ, "AIRSTACK_ROOT": str(root)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_mid_write(path: Path) -> Path:
    """Start rotations until one is SIGKILLed while its staging file exists; that file."""
    for _ in range(TRIES):
        writer = _rotate(path.parents[2])
        staged = sops.temporary(path, writer.pid)
        while writer.poll() is None and not staged.exists():
            time.sleep(0.0005)
        if writer.poll() is None:
            os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        if staged.exists():
            return staged
    raise AssertionError(f"no rotation was caught mid-write in {TRIES} tries")


def _git(root: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, check=False)


def test_a_killed_writers_file_is_ignored_then_removed_and_a_live_ones_kept(repo):
    path = repo.path("local")
    before = store.load(repo.root, "local").airflow.keys.fernet_key
    left = kill_mid_write(path)
    shutil.copy(PROJECT / ".gitignore", repo.root / ".gitignore")
    _git(repo.root, "init", "-q")
    assert _git(repo.root, "check-ignore", "-q", left.relative_to(repo.root).as_posix()).returncode == 0
    untracked = _git(repo.root, "status", "--porcelain", "--untracked-files=all").stdout
    assert "secret.yaml" in untracked and ".tmp" not in untracked  # `git add -A` would not commit it

    live = subprocess.Popen(["sleep", "60"])  # a writer still at work: its file must stay
    try:
        kept = sops.temporary(path, live.pid)
        kept.write_text("ciphertext of a live writer")
        rotated = _rotate(repo.root)
        assert rotated.wait(timeout=120) == 0
        assert not left.exists() and kept.read_text() == "ciphertext of a live writer"
        keys = store.load(repo.root, "local").airflow.keys
        assert keys.fernet_key != before  # the next run did its work too
    finally:
        live.kill()
        live.wait()
    assert sorted(p.name for p in path.parent.glob(".*.tmp")) == [kept.name]
    assert sops.remove_stale_temporaries(path) == [kept]  # its writer is gone now
