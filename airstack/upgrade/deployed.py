"""What each environment deploys to the official chart, as data (pure): its values and its Airflow config.

The values are the environment's deploy.yaml ``helm.airflow.values`` files merged as Helm merges
``-f`` files, then what the deploy pipes on stdin (:func:`airstack.deploy.helm_values.airflow_values`,
with deploy.yaml's ``airflow`` options; placeholder image and digest). Its Airflow config is the
values' ``config`` sections, ``executor`` as ``[core] executor``, and the ``AIRFLOW__*`` entries
of ``env``. The official chart's own defaults are not part of it (its templates are not kept here).
"""

from __future__ import annotations

import configparser
import io
from pathlib import Path

import yaml

from airstack.deploy.helm_values import merge_values
from airstack.errors import ConfigError

PLACEHOLDER_IMAGE = "registry.invalid/airflow:upgrade-rehearsal"


def helm_environments(root: Path) -> list[str]:
    """The environments whose deploy.yaml deploys the official chart."""
    found = []
    for path in sorted((root / "settings").glob("*/deploy.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict) and isinstance(data.get("helm"), dict) and data["helm"].get("airflow"):
            found.append(path.parent.name)
    return found


def _values_file(root: Path, rel: str) -> dict:
    try:
        data = yaml.safe_load((root / rel).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{rel}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{rel}: expected a mapping of chart values")
    return data


def chart_values(root: Path, env: str) -> dict:
    """The official chart's values for ``env``: its files, then the deploy's stdin payload."""
    from airstack.deploy import config, helm_values as helm

    spec = config.load(root, env).spec
    files = [_values_file(root, rel) for rel in spec.helm.airflow.values]
    payload = helm.airflow_values(helm.target(spec.helm), PLACEHOLDER_IMAGE, {}, "upgrade-rehearsal", spec.airflow)
    return merge_values({}, *files, payload)


def airflow_config(values: dict) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(airflow.cfg sections, ``AIRFLOW__*`` environment variables) that the chart values give Airflow."""
    sections = {s: {k: _text(v) for k, v in (opts or {}).items()} for s, opts in (values.get("config") or {}).items()}
    if values.get("executor"):
        sections.setdefault("core", {})["executor"] = str(values["executor"])
    env = {item["name"]: str(item.get("value", "")) for item in values.get("env") or []
           if isinstance(item, dict) and str(item.get("name", "")).startswith("AIRFLOW__")}
    return sections, env


def _text(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def cfg_text(sections: dict[str, dict[str, str]]) -> str:
    """An airflow.cfg holding ``sections`` (interpolation off: values are written as given)."""
    parser = configparser.RawConfigParser()
    for section, options in sorted(sections.items()):
        parser.add_section(section)
        for key, value in sorted(options.items()):
            parser.set(section, key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def lint_findings(stdout: str) -> list[str]:
    """The findings of ``airflow config lint`` (its ``  - ...`` lines after "Found issues")."""
    return [line.strip()[2:].strip() for line in stdout.splitlines() if line.startswith("  - ")]
