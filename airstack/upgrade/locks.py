"""The project's locks as data (pure): how they are compiled, what they pin, how two of them differ.

``compile_argv`` is the one definition of how ``requirements/<name>.txt`` is compiled from its
``.in`` (universal, hashed, the overrides applied): ``nox -s lock``
and the upgrade rehearsal both run it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PYTHON = "3.11"
LOCKS = ("runtime", "dev")  # in this order: dev is constrained by runtime.txt
OVERRIDES = "requirements/overrides.txt"  # Airflow's python-dateutil pin wins over botocore's `<3` (see the file)
AIRFLOW = "apache-airflow"
PROVIDER_PREFIX = "apache-airflow-providers-"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(?:[<>=!~;#]|$)")


def compile_argv(uv: list[str], name: str, extra: tuple[str, ...] = ()) -> list[str]:
    """``uv pip compile`` of ``requirements/<name>.in`` into its ``.txt`` (run from the repository root)."""
    return [*uv, "pip", "compile", "--quiet", "--universal", "--python-version", PYTHON, "--generate-hashes",
            "--custom-compile-command", "nox -s lock", *extra, "--override", OVERRIDES,
            f"requirements/{name}.in", "-o", f"requirements/{name}.txt"]


def pins(lock_text: str) -> dict[str, str]:
    """``{canonical name: version}`` of a compiled lock."""
    return {canonicalize_name(name): version for name, version in _PIN.findall(lock_text)}


def _key(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class PackageDiff:
    """What moves between two locks; each list sorted by name."""

    added: list[tuple[str, str]] = field(default_factory=list)  # (name, version)
    removed: list[tuple[str, str]] = field(default_factory=list)
    up: list[tuple[str, str, str]] = field(default_factory=list)  # (name, before, after)
    down: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.up or self.down)

    def to_dict(self) -> dict:
        return {"added": [{"name": n, "version": v} for n, v in self.added],
                "removed": [{"name": n, "version": v} for n, v in self.removed],
                "up": [{"name": n, "before": b, "after": a} for n, b, a in self.up],
                "down": [{"name": n, "before": b, "after": a} for n, b, a in self.down]}


def diff(before: dict[str, str], after: dict[str, str]) -> PackageDiff:
    """The packages added, removed, moved up and moved down from ``before`` to ``after``."""
    result = PackageDiff(added=[(n, after[n]) for n in sorted(set(after) - set(before))],
                         removed=[(n, before[n]) for n in sorted(set(before) - set(after))])
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        if old == new:
            continue
        older, newer = _key(old), _key(new)
        going_up = older < newer if older is not None and newer is not None else new > old
        (result.up if going_up else result.down).append((name, old, new))
    return result


def set_pin(in_text: str, package: str, version: str) -> str:
    """``in_text`` (a requirements .in file) with ``package`` pinned to ``version``, extras and comments kept;
    appended when the file does not name it."""
    wanted = canonicalize_name(package)
    lines, found = in_text.splitlines(keepends=True), False
    for i, line in enumerate(lines):
        match = _REQUIREMENT.match(line.strip())
        if match and canonicalize_name(match.group(1)) == wanted:
            lines[i] = f"{match.group(1)}{match.group(2) or ''}=={version}\n"
            found = True
    if not found:
        lines.append(("" if not lines or lines[-1].endswith("\n") else "\n") + f"{package}=={version}\n")
    return "".join(lines)


def resolution_failure(stderr: str, limit: int = 400) -> str:
    """uv's reason for not resolving, on one line: its ``cause:`` (or ``╰─▶``) paragraph, its last step when long."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(("cause:", "╰─▶"))), None)
    if start is None:
        tail = [line.strip() for line in lines if line.strip()]
        return (tail[-1] if tail else "uv gave no reason")[:limit]
    paragraph = [lines[start].strip().removeprefix("cause:").removeprefix("╰─▶")]
    for line in lines[start + 1:]:
        if not line.strip() or line.lstrip().startswith(("hint:", "help:")):
            break
        paragraph.append(line)
    text = " ".join(" ".join(paragraph).split())
    if len(text) > limit and " And because " in text:
        text = "… because " + text.rsplit(" And because ", 1)[1]
    return text if len(text) <= limit else text[:limit - 1] + "…"


def main(argv: list[str]) -> int:
    """``nox -s lock [-- UV_COMPILE_ARGS]``: every lock recompiled from its .in, in order."""
    import argparse

    from airstack import paths, proc

    parser = argparse.ArgumentParser(prog="nox -s lock --", description=main.__doc__)
    parser.add_argument("--uv", help="the uv executable (default: uv on PATH)")
    args, extra = parser.parse_known_args(argv)
    uv = [args.uv or proc.which("uv", "install uv, or pass --uv PATH")]
    for name in LOCKS:
        proc.run(compile_argv(uv, name, tuple(extra)), cwd=paths.repo_root(), timeout=900, what=f"compiling {name}")
    return 0


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
