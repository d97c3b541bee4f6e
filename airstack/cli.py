"""Shared helpers for the package's ``main()`` entry points."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from airstack.errors import AirstackError

log = logging.getLogger("airstack")


def run_main(func: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run ``func(argv)``; an :class:`AirstackError` becomes one line on stderr and exit code 1."""
    try:
        return func(sys.argv[1:] if argv is None else argv)
    except AirstackError as exc:
        log.debug("expected failure", exc_info=True)
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
