"""Settings values as they travel to Airflow (pure): strict JSON (no duplicate keys, no NaN), what would
not survive the way unchanged (NUL characters, integers beyond what a double holds exactly, whole numbers
written as floats), and the
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


def whole_floats(value: Any, where: str) -> list[tuple[str, str]]:
    """(path, problem) for each whole number written as a float (``1.0``) in ``value``."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in whole_floats(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in whole_floats(item, f"{where}[{index}]")]
    if isinstance(value, float) and value.is_integer():
        whole = int(value)
        return [(where, f"{value!r} is a whole number written as a float, which sops gives back as {whole}, an int: "
                        f"write {whole}, or give the value as a JSON string (text keeps {value!r})")]
    return []


def number_types(document: Any) -> list[tuple[str, str]]:
    """Where a number would change type on the way to Airflow: a whole float (``1.0``) in a variable's mapping or
    list, or in a connection's ``extra`` mapping. sops holds numbers as doubles and writes a whole one without its
    fraction, so the type is lost before anything can see it: refused while the document still shows it."""
    airflow = document.get("airflow") if isinstance(document, dict) else None
    if not isinstance(airflow, dict):
        return []
    found = []
    variables = airflow.get("variables")
    for key, value in variables.items() if isinstance(variables, dict) else ():
        if isinstance(value, dict | list):  # a bare number is refused as such (variable_value)
            found += whole_floats(value, f"airflow.variables.{key}")
    connections = airflow.get("connections")
    for index, conn in enumerate(connections if isinstance(connections, list) else ()):
        if isinstance(conn, dict) and isinstance(conn.get("extra"), dict | list):
            found += whole_floats(conn["extra"], f"airflow.connections[{index}].extra")
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
