"""Turn pydantic validation errors into one line per problem, naming file and field."""

from __future__ import annotations

from pydantic import ValidationError


def format_location(prefix: str, loc: tuple) -> str:
    """``("connections", 3, "port")`` under ``airflow`` -> ``airflow.connections[3].port``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def format_validation_error(file: str, prefix: str, exc: ValidationError) -> str:
    """One line per error: ``file: location: message``."""
    lines = []
    for err in exc.errors():
        loc = format_location(prefix, tuple(err["loc"]))
        lines.append(f"{file}: {loc or '(top level)'}: {err['msg']}")
    return "\n".join(lines)
