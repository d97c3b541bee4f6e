"""This process's own output, sent elsewhere for a while (a DAG run's log, `up`'s migration log).

Airflow's loggers write to the streams they were given when logging was configured, and pytest's
capture replaces ``sys.stdout``; redirecting the file descriptors underneath catches them all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _streams() -> set:
    return {sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__}


def flush_streams() -> None:
    for stream in _streams():
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            continue


@contextmanager
def output_to(path: Path, append: bool = False) -> Iterator[None]:
    """Everything this process writes goes to ``path`` meanwhile: descriptors 1 and 2, and whatever
    descriptors the current Python streams write to. Restored afterwards."""
    targets = {1, 2}
    for stream in _streams():
        try:
            targets.add(stream.fileno())
        except (AttributeError, OSError, ValueError):
            continue
    flush_streams()
    saved = {target: os.dup(target) for target in targets}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
    try:
        for target in targets:
            os.dup2(fd, target)
        yield
    finally:
        flush_streams()
        os.close(fd)
        for target, copy in saved.items():
            os.dup2(copy, target)
            os.close(copy)
