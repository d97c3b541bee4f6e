"""Settings values as they travel to Airflow (pure): strict JSON (no duplicate keys, no NaN), what would
not survive the way unchanged (NUL characters, integers beyond what a double holds exactly), and the
checks of single values that the schema's fields run first (ports, Fernet keys, variables)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

EXACT_INT = 2**53  # beyond this, a JSON reader holding numbers as doubles rounds


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r} (JSON keeps only the last one): remove one")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number: write it as a string")


def parse_json(text: str) -> Any:
    """Strict JSON: duplicate keys, NaN and Infinity are refused (ValueError), nothing is silently dropped."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def json_object(value: Any, what: str) -> Any:
    """A mapping, or a JSON string holding an object (no duplicate keys, numbers within ±2^53, no NUL)."""
    if isinstance(value, str):
        try:
            value = parse_json(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from None
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}")
        problems = inexact(value)
        if problems:
            where, problem = problems[0]
            raise ValueError(f"{what}{where}: {problem}")
    return value


def inexact(value: Any, where: str = "") -> list[tuple[str, str]]:
    """(path, problem) for every value that would not survive the way to Airflow unchanged."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                found.append((where, "a key contains a NUL character, which Airflow's database cannot store: "
                                     "remove it"))
            found += inexact(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += inexact(item, f"{where}[{index}]")
    elif isinstance(value, str) and "\x00" in value:
        found.append((where, "contains a NUL character, which Airflow's database cannot store: remove it"))
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT_INT:
        found.append((where, "an integer outside ±2^53, which JSON readers (sops, the Airflow UI) round: "
                             "write it as a string"))
    return found


def port_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():  # sops keeps YAML/JSON numbers as doubles
        return int(value)
    return value


def fernet_key_check(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("not a Fernet key: expected 32 url-safe base64-encoded bytes") from None
    if len(raw) != 32:
        raise ValueError(f"not a Fernet key: decodes to {len(raw)} bytes, expected 32")
    return value


def variable_value(value: Any) -> Any:
    """Airflow stores variables as text: strings as they are, mappings and lists as JSON; a bare scalar is refused."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if value is None:
        raise ValueError('no value (YAML ~ or null): write a string ("" for an empty one)')
    if isinstance(value, bool):
        raise ValueError("a boolean (YAML reads yes/no/true/on as one): quote it if you mean text, "
                         "Airflow stores variables as text")
    if isinstance(value, int | float):
        raise ValueError("a number (YAML reads unquoted 1e3, 0x10 or 1_000 as one, and changes how it is "
                         "written): quote it, Airflow stores variables as text")
    return value
