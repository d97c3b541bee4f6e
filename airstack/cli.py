"""What the package's ``main()`` entry points share: :func:`run_main` (errors as one line) and
:func:`confirm` (the one question before a change)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping

from airstack.errors import AirstackError, ConfirmationNeededError

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


def interactive(stdin_isatty: Callable[[], bool] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether someone can answer a question: stdin is a terminal and ``CI`` is not set."""
    environ = os.environ if environ is None else environ
    return not environ.get("CI") and (stdin_isatty or sys.stdin.isatty)()


def _ask(question: str) -> bool:
    from rich.prompt import Confirm

    return Confirm.ask(question, default=False)


def confirm(question: str, *, yes: bool, protected: bool, hint: str = "pass --yes",
            ask: Callable[[str], bool] = _ask, stdin_isatty: Callable[[], bool] | None = None,
            environ: Mapping[str, str] | None = None) -> bool:
    """Whether to go on with a change: the one policy of every command that asks.

    - ``yes`` (``--yes``, what CI passes after a reviewed plan): go on;
    - not ``protected``: go on without asking. ``protected`` is the environment's flag
      (``settings/<env>/deploy.yaml`` ``protected``), or true for what cannot be undone
      (``clean``, ``destroy``);
    - protected: ask (default no). Where nobody can answer (no terminal, or ``CI`` set), refuse
      with :class:`ConfirmationNeededError` saying ``hint``, rather than go on unasked.
    """
    if yes or not protected:
        return True
    if not interactive(stdin_isatty, environ):
        raise ConfirmationNeededError(f"{question.rstrip('?')}: not interactive (no terminal or CI is set): {hint}")
    return ask(question)
