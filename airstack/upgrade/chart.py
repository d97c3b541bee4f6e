"""Our values against an official chart release's ``values.schema.json``.

:func:`problems` is pure: the schema's own validation (types, enums, required keys) and the keys
the release does not declare (:func:`unknown_keys`: the chart would ignore them silently).
:func:`find_schema` looks for the release's schema where this machine keeps one: the schema
kept with our values, ``charts/airflow/schemas/airflow-chart-<version>.values.schema.json``, a chart folder
given in ``AIRSTACK_OFFICIAL_CHART``, or the chart cache ``~/.cache/airstack/charts/airflow-<version>``.
A release found in none of them is reported as not obtainable here, with the command that fetches it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Each release whose values we check is kept as data, with our values for the official chart (the tests read it too).
KEPT = "charts/airflow/schemas/airflow-chart-{version}.values.schema.json"
SOURCE_ENV = "AIRSTACK_OFFICIAL_CHART"


def cache_dir(version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "airstack" / "charts" / f"airflow-{version}"


def schema_candidates(root: Path, version: str) -> list[Path]:
    found = [root / KEPT.format(version=version)]
    given = os.environ.get(SOURCE_ENV)
    if given:
        found.append(Path(given) / "values.schema.json")
    cached = cache_dir(version)
    return [*found, cached / "airflow" / "values.schema.json", cached / f"airflow-chart-{version}.values.schema.json"]


def find_schema(root: Path, version: str) -> tuple[dict | None, str]:
    """(the schema, where it came from) or (None, one line saying it is not here and how to get it)."""
    for path in schema_candidates(root, version):
        if path.is_file():
            chart_yaml = path.parent / "Chart.yaml"
            if path.name == "values.schema.json" and chart_yaml.is_file() and f"version: {version}" not in \
                    chart_yaml.read_text():
                continue  # AIRSTACK_OFFICIAL_CHART holds another release
            shown = path.relative_to(root) if path.is_relative_to(root) else path
            return json.loads(path.read_text()), f"schema: {shown}"
    return None, (f"chart {version}: its values.schema.json cannot be obtained here (not in "
                  f"{KEPT.format(version=version)}, {SOURCE_ENV} or {cache_dir(version)}): `helm pull airflow "
                  f"--repo https://airflow.apache.org --version {version} --untar --untardir {cache_dir(version)}`")


def _resolve(root: dict, node: dict) -> dict:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].removeprefix("#/definitions/")]
    return node


def _child(root: dict, node: dict, key: str) -> dict | None:
    """The schema of ``key`` in an object ``node``; None when the object does not declare it."""
    properties, extra = node.get("properties"), node.get("additionalProperties")
    if properties is not None and key in properties:
        return properties[key]
    if isinstance(extra, dict):
        return extra
    return {} if properties is None and extra is None else None  # free-form: anything goes below


def unknown_keys(root: dict, values: dict, node: dict | None = None, prefix: str = "") -> list[str]:
    """Key paths of ``values`` the schema does not declare (pure).

    A key is declared when it is one of its object's ``properties``, or when the object admits any
    key with a schema (``additionalProperties: {...}``: airflow.cfg sections, annotations). An object
    with neither (free-form) admits its whole subtree.
    """
    node = _resolve(root, root if node is None else node)
    problems = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        child = _child(root, node, key)
        if child is None:
            problems.append(path)
        elif child and isinstance(value, dict):
            problems += unknown_keys(root, value, child, path + ".")
        elif child and isinstance(value, list):
            items = _resolve(root, child).get("items")
            for i, item in enumerate(value):
                if isinstance(item, dict) and isinstance(items, dict):
                    problems += unknown_keys(root, item, items, f"{path}[{i}].")
    return problems


def problems(schema: dict, values: dict) -> list[str]:
    """One line per problem of ``values`` under ``schema``: schema violations, then undeclared keys."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    found = [f"{'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
             for error in sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.absolute_path)))]
    return found + [f"{key}: not a key of this chart version (it would be ignored)"
                    for key in unknown_keys(schema, values)]
