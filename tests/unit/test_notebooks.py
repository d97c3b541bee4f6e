"""Notebooks that pods run with papermill (dags/tasks/<project>/notebooks/*.ipynb): committed clean.

nbformat 4 JSON, a python3 kernelspec, exactly one code cell tagged ``parameters`` that only
assigns plain values, code that compiles, and no stored outputs. Full nbformat schema validation
runs in the etl-basic image (tests/dags/test_papermill.py): nbformat is not next to Airflow.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from airstack import paths

# --changed-since: run when papermill_example is affected (it, dags/tasks/example1/ or its image changed).
pytestmark = pytest.mark.dag_file("dags/papermill_example.py")
NOTEBOOKS = sorted(paths.dags_folder().glob("tasks/*/notebooks/*.ipynb"))
CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # nbformat 4.5's cell id


def _source(cell: dict) -> str:
    source = cell["source"]
    assert isinstance(source, str) or all(isinstance(line, str) for line in source), cell.get("id")
    return source if isinstance(source, str) else "".join(source)


def _parameters_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]


def test_the_papermill_example_notebook_is_found():
    assert paths.dags_folder() / "tasks" / "example1" / "notebooks" / "orders_report.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(paths.repo_root()).as_posix())
def test_notebook_is_clean_nbformat4(path: Path):
    nb = json.loads(path.read_text())
    assert set(nb) == {"cells", "metadata", "nbformat", "nbformat_minor"}
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 4
    kernel = nb["metadata"]["kernelspec"]
    assert (kernel["name"], kernel["language"]) == ("python3", "python")
    ids = [c.get("id") for c in nb["cells"]]
    if nb["nbformat_minor"] >= 5:
        assert all(isinstance(i, str) and CELL_ID.match(i) for i in ids), ids
        assert len(set(ids)) == len(ids), f"duplicate cell ids: {ids}"
    for cell in nb["cells"]:
        assert cell["cell_type"] in {"code", "markdown", "raw"}
        assert isinstance(cell["metadata"], dict)
        source = _source(cell)
        if cell["cell_type"] == "code":
            # Committed without results: outputs belong to the executed copy (the run's artifact).
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{cell.get('id')}: has outputs"
            ast.parse(source, filename=f"{path.name}:{cell.get('id')}")
    assert "injected-parameters" not in {t for c in nb["cells"] for t in c["metadata"].get("tags", [])}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(paths.repo_root()).as_posix())
def test_notebook_has_one_parameters_cell_of_plain_assignments(path: Path):
    nb = json.loads(path.read_text())
    cells = _parameters_cells(nb)
    assert len(cells) == 1, f"{len(cells)} cells tagged 'parameters'; papermill injects after the first, so keep one"
    assert cells[0]["cell_type"] == "code"
    tree = ast.parse(_source(cells[0]))
    names = []
    for node in tree.body:
        # papermill's injected cell overrides these names, so each is a name = literal default.
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ast.literal_eval(node.value)
        names.append(node.targets[0].id)
    assert names, "the parameters cell assigns nothing"
    if path.name == "orders_report.ipynb":
        assert names == ["day", "min_amount"]
