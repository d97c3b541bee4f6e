"""The deploy plan's checks, each told as passed, failed, or ``could not run: <reason>`` (:mod:`airstack.verdict`).

A deploy runs them before anything changes (before CloudFormation, Helm, or a registry copy):

- a check that fails stops the plan and the deploy with its lines (one per problem);
- a check that could not run (a release record that cannot be read, a registry or a Docker daemon
  that cannot be asked) is neither a pass nor a failure. A plan (``--dry-run``) goes on, says so,
  and ends ``incomplete`` (exit 1); a deploy stops there, with nothing changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from rich.console import Console

from airstack import verdict
from airstack.deploy.guards import GuardError
from airstack.deploy.release import RecordUnreadableError
from airstack.errors import DockerError

console = Console(highlight=False, soft_wrap=True)
# What keeps a check from running: nothing this deploy could judge, only something it could not ask.
COULD_NOT_RUN = (DockerError, RecordUnreadableError)


@dataclass
class Step:
    name: str
    problems: list[str] = field(default_factory=list)
    ran: bool = False


@dataclass
class Checks:
    """The plan's checks of one environment; ``dry_run``: a check that could not run does not stop the plan."""

    env: str
    dry_run: bool
    tally: verdict.Tally = field(default_factory=verdict.Tally)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Run the body as the check ``name``: it sets ``problems`` (none: passed); an error of
        :data:`COULD_NOT_RUN` makes it "could not run" (``ran`` stays False, the error is not raised)."""
        step = Step(name)
        try:
            yield step
        except COULD_NOT_RUN as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.tally.add_not_run(f"{name}: {reason}")
            console.print(f"check {name}: [yellow]could not run[/]: {reason}")
            if not self.dry_run:
                raise GuardError(f"{self.env}: the check {name} could not run ({reason}): nothing was changed; "
                                 "deploy again once it can") from None
            return
        step.ran = True
        if step.problems:
            self.tally.failed += 1
            console.print(f"check {name}: [red]failed[/]")
            raise GuardError("\n".join(step.problems))
        self.tally.passed += 1
        console.print(f"check {name}: [green]passed[/]")

    def word(self) -> str:
        return verdict.verdict(self.tally)

    def summary(self) -> str:
        """``plan: ok (3 passed)``, or ``plan: incomplete (2 passed, 1 could not run)`` and the reasons."""
        reasons = "".join(f"\n  {r}" for r in self.tally.reasons())
        return f"plan: {self.word()} ({self.tally.counts()}){reasons}"
