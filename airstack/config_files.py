"""Reading a configuration file into a pydantic model: every problem one line, ``file: field: message``.

:func:`load_model` is the one reader the configuration files share (``deploy.yaml``, ``image.yaml``,
pyproject's ``[tool.airstack.*]`` sections); :func:`problem_lines` is its formatting, for readers
that add lines of their own (the settings schema).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from airstack.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
_READ = object()  # load_model's default: read the file as YAML


def format_location(prefix: str, loc: tuple) -> str:
    """``("connections", 3, "port")`` under ``airflow`` -> ``airflow.connections[3].port``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def plain_message(err: dict) -> str:
    """pydantic's message, without the ``Value error, `` a validator's ValueError gets."""
    return err["msg"].removeprefix("Value error, ")


def problem_lines(file: str, exc: ValidationError, prefix: str = "",
                  message: Callable[[dict], str] = plain_message) -> list[str]:
    """One line per error: ``file: location: message`` (``(top level)`` when there is no location)."""
    return [f"{file}: {format_location(prefix, tuple(err['loc'])) or '(top level)'}: {message(err)}"
            for err in exc.errors()]


def read_yaml(path: Path, shown: str | None = None) -> Any:
    """A YAML file's data (``{}`` when empty); bad YAML is one line naming the file and the line."""
    shown = shown or str(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{shown}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None


def load_model(path: Path, model: type[M], *, data: Any = _READ, shown: str | None = None, prefix: str = "") -> M:
    """``data`` (by default: ``path`` read as YAML) validated as ``model``.

    Every problem is one line, ``shown: prefix.field: message`` (``shown`` defaults to ``path``),
    all of them in one :class:`ConfigError`.
    """
    shown = shown or str(path)
    if data is _READ:
        data = read_yaml(path, shown)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(problem_lines(shown, exc, prefix))) from None
