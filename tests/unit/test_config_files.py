"""One reader for configuration files: airstack.config_files.load_model and its "file: field: message" lines."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from airstack.config_files import load_model
from airstack.errors import ConfigError


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int = Field(ge=1)

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        if value != value.lower():
            raise ValueError("must be lowercase")
        return value


class _File(BaseModel):
    items: list[_Item]


@pytest.mark.parametrize("text, lines", [
    ("items: [{name: a, size: 0}]\n", ["x.yaml: items[0].size: Input should be greater than or equal to 1"]),
    ("items: [{name: A, size: 1, colour: red}]\n", ["x.yaml: items[0].name: must be lowercase",
                                                    "x.yaml: items[0].colour: Extra inputs are not permitted"]),
    ("", ["x.yaml: items: Field required"]),
    ("- 1\n", ["x.yaml: (top level): Input should be a valid dictionary or instance of _File"]),
    ("items: [unclosed\n", ["x.yaml: not valid YAML (line 2): expected ',' or ']', but got '<stream end>'"]),
], ids=["bound", "validator-and-extra", "empty", "top-level", "bad-yaml"])
def test_every_problem_is_one_line_naming_file_and_field(tmp_path, text, lines):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_model(path, _File, shown="x.yaml")
    assert str(caught.value).splitlines() == lines


def test_given_data_and_a_prefix(tmp_path):
    with pytest.raises(ConfigError, match=r"^pyproject.toml: tool.x.items\[0\].name: Field required$"):
        load_model(tmp_path / "pyproject.toml", _File, data={"items": [{"size": 1}]}, shown="pyproject.toml",
                   prefix="tool.x")
    assert load_model(tmp_path / "none", _File, data={"items": []}) == _File(items=[])
