"""Copy the DAG files baked into the runtime image onto the DAGs volume.

The platform chart's dags-sync hook Job runs this with ``python3 -c`` in the runtime image
(images/airflow) itself, so the volume that KubernetesPodOperator pods mount read-only holds
exactly the DAG files of the image being deployed.

- Each changed file is written under a temporary name beside its destination and renamed over
  it: a reader (the dag processor, a worker, a task pod) sees the old file or the new one,
  never a partial one.
- Files and folders the image no longer has are removed afterwards (``__pycache__`` too: it
  is rebuilt from the new sources).
- Files are made readable by everyone: task pods run as another user (kpo.py: uid 1000).
- An empty source is an error, not an instruction to empty the volume.
- ``.airstack-dags-image`` on the volume names the image the files came from.

Only the standard library: it runs with the image's own Python. Environment: SYNC_SOURCE,
SYNC_TARGET, SYNC_IMAGE (optional).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

MARKER = ".airstack-dags-image"
SKIP_DIRS = frozenset({"__pycache__"})
TEMP_PREFIX = ".airstack-sync-"


class SyncError(Exception):
    pass


def _write_atomically(target: Path, data_from: Path | None, text: str | None = None, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            if data_from is not None:
                with open(data_from, "rb") as src:
                    shutil.copyfileobj(src, out)
            else:
                out.write((text or "").encode())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _source_files(source: Path) -> tuple[set[Path], set[Path]]:
    """Relative folders and files under ``source`` (skipping SKIP_DIRS)."""
    folders: set[Path] = set()
    files: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        rel_dir = Path(dirpath).relative_to(source)
        folders.add(rel_dir)
        files.update(rel_dir / name for name in filenames)
    return folders, files


def _copy(source: Path, target: Path, folders: set[Path], files: set[Path], counts: dict[str, int]) -> None:
    for rel_dir in sorted(folders):
        dst_dir = target / rel_dir
        if dst_dir.is_symlink() or (dst_dir.exists() and not dst_dir.is_dir()):
            _remove(dst_dir)  # a file (or link) where the image now has a folder
        dst_dir.mkdir(parents=True, exist_ok=True)
    for rel in sorted(files):
        src, dst = source / rel, target / rel
        if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
            counts["unchanged"] += 1
            continue
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)  # a folder where the image now has a file
        _write_atomically(dst, src, mode=(src.stat().st_mode & 0o777) | 0o444)
        counts["copied"] += 1


def _prune(target: Path, keep: set[Path], counts: dict[str, int]) -> None:
    """Remove what is not in ``keep``, deepest first."""
    for dirpath, dirnames, filenames in os.walk(target, topdown=False):
        rel_dir = Path(dirpath).relative_to(target)
        for name in [*filenames, *dirnames]:
            rel = rel_dir / name
            path = target / rel
            if rel not in keep and (path.exists() or path.is_symlink()):
                _remove(path)
                counts["removed"] += 1


def sync(source: Path, target: Path, image: str = "") -> dict[str, int]:
    """Make ``target`` hold the files of ``source``; returns counts of copied/unchanged/removed."""
    if not source.is_dir():
        raise SyncError(f"source {source} is not a directory")
    if not target.is_dir():
        raise SyncError(f"target {target} is not a directory (is the volume mounted?)")
    folders, files = _source_files(source)
    if not files:
        raise SyncError(f"source {source} has no files: refusing to empty {target}")
    counts = {"copied": 0, "unchanged": 0, "removed": 0}
    _copy(source, target, folders, files, counts)
    _prune(target, folders | files | {Path(MARKER)}, counts)
    if image:
        _write_atomically(target / MARKER, None, text=image + "\n")
    return counts


def main() -> int:
    source = Path(os.environ.get("SYNC_SOURCE", "/opt/airflow/dags"))
    target = Path(os.environ.get("SYNC_TARGET", "/mnt/dags"))
    image = os.environ.get("SYNC_IMAGE", "")
    try:
        counts = sync(source, target, image)
    except (SyncError, OSError) as exc:
        print(f"dags-sync: {exc}", file=sys.stderr)
        return 1
    print(f"dags-sync: {source} -> {target} ({image or 'image not named'}): "
          f"{counts['copied']} copied, {counts['unchanged']} unchanged, {counts['removed']} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
