"""What applying settings would do to an Airflow database: pure comparison, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

PROTECTED_POOLS = frozenset({"default_pool"})

ADD, CHANGE, REMOVE, UNCHANGED = "add", "change", "remove", "unchanged"


@dataclass
class State:
    """Connections (id -> fields), variables (name -> value), pools (name -> fields)."""

    connections: dict[str, dict] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    pools: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class Action:
    kind: str  # connection | variable | pool
    name: str
    action: str  # add | change | remove | unchanged
    fields: tuple[str, ...] = ()  # the fields that differ (never their values)


def _compare(kind: str, desired: dict, current: dict, prune: bool, protected=frozenset()) -> list[Action]:
    actions = []
    for name, want in desired.items():
        if name not in current:
            actions.append(Action(kind, name, ADD))
            continue
        have = current[name]
        if isinstance(want, dict):
            changed = tuple(sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k)))
        else:
            changed = ("value",) if want != have else ()
        actions.append(Action(kind, name, CHANGE if changed else UNCHANGED, changed))
    if prune:
        actions += [Action(kind, name, REMOVE) for name in current if name not in desired and name not in protected]
    return actions


def plan(desired: State, current: State, prune: bool = False) -> list[Action]:
    """Every item of ``desired`` (add / change / unchanged), plus removals when ``prune``."""
    return sorted(
        _compare("connection", desired.connections, current.connections, prune)
        + _compare("variable", desired.variables, current.variables, prune)
        + _compare("pool", desired.pools, current.pools, prune, PROTECTED_POOLS)
    )


def changes(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.action != UNCHANGED]
