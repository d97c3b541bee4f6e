"""The team's DAG policy, read from ``[tool.airstack.dag-policy]`` in pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from airstack.config_files import load_model
from airstack.errors import ConfigError

SECTION = "tool.airstack.dag-policy"
RUNS_SECTION = "tool.airstack.dag-runs"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class DagPolicy(_Model):
    forbidden_owners: tuple[str, ...] = Field(("airflow", ""), alias="forbidden-owners")
    allowed_tags: tuple[str, ...] = Field(alias="allowed-tags", min_length=1)
    min_retries: int = Field(1, alias="min-retries", ge=0)
    require_explicit_catchup: bool = Field(True, alias="require-explicit-catchup")
    parse_time_budget: float = Field(2.0, alias="parse-time-budget", gt=0)
    deprecated_imports: dict[str, str] = Field(default_factory=dict, alias="deprecated-imports")


class DagRunPolicy(_Model):
    skip: dict[str, str] = Field(default_factory=dict)


def _section(data: dict, dotted: str) -> dict:
    for key in dotted.split("."):
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def _read(pyproject: Path) -> dict:
    try:
        return tomllib.loads(pyproject.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{pyproject}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: not valid TOML: {exc}") from None


def load_policy(pyproject: Path) -> DagPolicy:
    section = _section(_read(pyproject), SECTION)
    if not section:
        raise ConfigError(f"{pyproject}: [{SECTION}] is missing")
    return load_model(pyproject, DagPolicy, data=section, prefix=SECTION)


def load_run_policy(pyproject: Path) -> DagRunPolicy:
    return load_model(pyproject, DagRunPolicy, data=_section(_read(pyproject), RUNS_SECTION), prefix=RUNS_SECTION)
