"""What a verdict means (pure): every check passed, failed, was skipped, or could not run.

The project's reports (the gate's lanes, the upgrade rehearsal, the deploy plan) count their
checks with :class:`Tally` and end with one of four words (:func:`verdict`):

- ``ok``: every check ran, and none failed;
- ``partial``: none failed, but some could not run because this machine lacks a capability
  named in :data:`CAPABILITIES` (a short, documented list). Exit code 0, unless the capability is
  required here (``AIRSTACK_REQUIRE``, which CI sets: see :func:`required`);
- ``incomplete``: none failed, but something else could not run (a setup failure, an empty
  selection, an import that broke), or nothing was counted at all. Exit code non-zero: nothing can
  be said about what did not run. (A selection that is empty by design, such as ``--changed-since``
  with nothing affected, is the caller's to report as such, not a verdict.)
- ``failed``: a check ran and failed.

A check that could not run is neither a pass nor a regression. A skip that is by design (a DAG
listed under ``[tool.airstack.dag-policy] skip``, a test that another test's failure makes
pointless) counts as skipped, and is shown with its reason.

A check that cannot run for want of a capability says so with :func:`lacking`, whose text
:func:`capability_of` recognises again in a skip reason, so that a pytest skip can carry it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# The only reasons that may leave a verdict `partial` rather than `incomplete`. Keep this short: each
# entry is a part of the machine the project cannot install itself. docs/dag-tests.md lists them.
CAPABILITIES: dict[str, str] = {
    "docker": "no Docker daemon answers, or it cannot have the images the KubernetesPodOperator DAGs run as "
              "local containers",
    "official-chart": "the official apache-airflow chart's source cannot be had (no network to its repository, "
                      "no AIRSTACK_OFFICIAL_CHART, no cache)",
}
REQUIRE_ENV = "AIRSTACK_REQUIRE"  # comma-separated capabilities that must be there (CI: `official-chart`), or `all`
_MARK = "could not run, lacks "

OK, PARTIAL, INCOMPLETE, FAILED = "ok", "partial", "incomplete", "failed"


def lacking(capability: str, detail: str) -> str:
    """The reason a check gives when this machine lacks ``capability`` (a key of :data:`CAPABILITIES`)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}: one of {', '.join(CAPABILITIES)}")
    return f"{_MARK}{capability}: {detail}"


def capability_of(reason: str) -> str | None:
    """The capability a reason made by :func:`lacking` names, or None (pytest may prefix it: 'Skipped: ')."""
    at = reason.find(_MARK)
    if at < 0:
        return None
    name = reason[at + len(_MARK):].split(":", 1)[0].strip()
    return name if name in CAPABILITIES else None


NOT_RUN = "could not run: "


def could_not_run(reason: str) -> str:
    """How a check that could not run says so, where it can only fail (a pytest failure's message):
    ``could not run: <reason>``. :func:`not_run_reason` recognises it again."""
    return f"{NOT_RUN}{reason}"


def not_run_reason(message: str) -> str | None:
    """The reason of a message made by :func:`could_not_run` (pytest may prefix it: 'Failed: '), or None."""
    text = message.strip().removeprefix("Failed: ")
    if not text.startswith(NOT_RUN):
        return None
    return text[len(NOT_RUN):].splitlines()[0].strip()


def required(environ: Mapping[str, str] | None = None) -> set[str]:
    """The capabilities this run must have (``AIRSTACK_REQUIRE``): a lack of one of them fails the verdict."""
    raw = (os.environ if environ is None else environ).get(REQUIRE_ENV, "")
    names = {n.strip() for n in raw.split(",") if n.strip()}
    if "all" in names:
        return set(CAPABILITIES)
    unknown = names - set(CAPABILITIES)
    if unknown:
        from airstack.errors import ConfigError

        raise ConfigError(f"{REQUIRE_ENV}: unknown capability {', '.join(sorted(unknown))} "
                          f"(one of: {', '.join(CAPABILITIES)}, all)")
    return names


@dataclass
class Tally:
    """Counts of what ran, and the distinct reasons of what did not."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0  # by design, or made pointless by another failure: shown, not a problem
    lacking: dict[str, int] = field(default_factory=dict)  # reason (from lacking()) -> count
    not_run: dict[str, int] = field(default_factory=dict)  # reason -> count: setup failures, empty selections...
    skip_reasons: dict[str, int] = field(default_factory=dict)  # reason -> count, for `skipped`

    def add_skip(self, reason: str, count: int = 1) -> None:
        """A skip: counted as lacking a capability when its reason says so (:func:`lacking`), as could not
        run when it says that (:func:`could_not_run`), else as skipped."""
        if capability_of(reason):
            self.lacking[reason] = self.lacking.get(reason, 0) + count
        elif not_run_reason(reason.removeprefix("Skipped: ")):
            self.add_not_run(not_run_reason(reason.removeprefix("Skipped: ")), count)
        else:
            self.skipped += count
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + count

    def add_not_run(self, reason: str, count: int = 1) -> None:
        self.not_run[reason] = self.not_run.get(reason, 0) + count

    def as_dict(self) -> dict:
        """The counts as JSON-able data (what a lane writes for the gate to read: :meth:`from_dict`)."""
        return {"passed": self.passed, "failed": self.failed, "skipped": self.skipped, "lacking": dict(self.lacking),
                "not_run": dict(self.not_run), "skip_reasons": dict(self.skip_reasons)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Tally:
        return cls(int(data.get("passed", 0)), int(data.get("failed", 0)), int(data.get("skipped", 0)),
                   {str(k): int(n) for k, n in data.get("lacking", {}).items()},
                   {str(k): int(n) for k, n in data.get("not_run", {}).items()},
                   {str(k): int(n) for k, n in data.get("skip_reasons", {}).items()})

    @property
    def could_not_run(self) -> int:
        return sum(self.lacking.values()) + sum(self.not_run.values())

    @property
    def empty(self) -> bool:
        """Nothing counted at all: not a pass, a skip, nor a reason."""
        return not (self.ran or self.skipped or self.could_not_run)

    def merge(self, other: Tally) -> Tally:
        out = Tally(self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped)
        for mine, theirs, into in ((self.lacking, other.lacking, out.lacking),
                                   (self.not_run, other.not_run, out.not_run),
                                   (self.skip_reasons, other.skip_reasons, out.skip_reasons)):
            for source in (mine, theirs):
                for reason, count in source.items():
                    into[reason] = into.get(reason, 0) + count
        return out

    @property
    def ran(self) -> int:
        return self.passed + self.failed

    def counts(self) -> str:
        """``12 passed, 1 failed, 2 skipped, 3 could not run`` (zero counts left out but for passed)."""
        parts = [f"{self.passed} passed"]
        others = ((self.failed, "failed"), (self.skipped, "skipped"), (self.could_not_run, "could not run"))
        parts += [f"{n} {word}" for n, word in others if n]
        return ", ".join(parts)

    def reasons(self) -> list[str]:
        """The distinct reasons of what did not run or was skipped, most frequent first: ``3 × reason``."""
        rows = [(n, f"could not run: {r}" if not capability_of(r) else r) for r, n in self.not_run.items()]
        rows += list((n, r) for r, n in self.lacking.items())
        rows += [(n, f"skipped: {r}") for r, n in self.skip_reasons.items()]
        return [f"{n} × {text}" for n, text in sorted(rows, key=lambda row: (-row[0], row[1]))]


def verdict(tally: Tally, require: Iterable[str] = ()) -> str:
    """``failed``, ``incomplete``, ``partial`` or ``ok`` (see the module's docstring)."""
    needed = set(require)
    if tally.failed:
        return FAILED
    if tally.not_run or any(capability_of(r) in needed for r in tally.lacking):
        return INCOMPLETE
    if tally.empty:  # nothing counted at all: nothing was checked
        return INCOMPLETE
    if tally.lacking:
        return PARTIAL
    return OK


def worst(words: Iterable[str]) -> str:
    """The verdict of several reports together: the worst of their words (``ok`` for none)."""
    order = (OK, PARTIAL, INCOMPLETE, FAILED)
    return max(words, key=order.index, default=OK)


def exit_code(word: str) -> int:
    """0 for ``ok`` and ``partial``, 1 otherwise."""
    return 0 if word in (OK, PARTIAL) else 1
