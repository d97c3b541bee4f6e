"""The shape of airstack/ (issue 16): module sizes and which layers may import which.

The Docker SDK's one importer is checked in test_docker_client.py, the product's independence of
tests/ in test_bench_registry.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airstack import paths

ROOT = paths.repo_root()
MAX_LINES = 400
# Lower layers import nothing from the higher ones (function-level imports included).
LAYERS = {
    "airstack.settings": ("airstack.deploy", "airstack.localenv", "airstack.images", "airstack.bench"),
    "airstack.images": ("airstack.deploy", "airstack.localenv", "airstack.bench"),
    "airstack.localenv": ("airstack.deploy", "airstack.bench"),
    # The DAG bundle both deploys and the local env run; what deploys alone do with it: airstack.deploy.dag_bundles.
    "airstack.git_bundle": ("airstack.deploy", "airstack.localenv", "airstack.bench"),
    "airstack.postgres": ("airstack.deploy", "airstack.localenv", "airstack.images", "airstack.settings"),
    "airstack.docker_client": ("airstack.deploy", "airstack.localenv", "airstack.images", "airstack.settings"),
    "airstack.proc": ("airstack.deploy", "airstack.localenv", "airstack.images", "airstack.settings"),
    "airstack.verdict": ("airstack.deploy", "airstack.localenv", "airstack.images", "airstack.settings",
                         "airstack.upgrade", "airstack.testrun", "airstack.postgres"),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "airstack").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return names


def test_no_module_is_over_the_limit():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert sizes and {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_imports_only_downward(layer):
    above = LAYERS[layer]
    mine = {name: path for name, path in modules().items() if name == layer or name.startswith(f"{layer}.")}
    assert mine, f"no module {layer}"
    upward = {name: sorted(i for i in imported(path) if i.startswith(above)) for name, path in mine.items()}
    assert {name: found for name, found in upward.items() if found} == {}


# They edit a scratch copy's deploy.yaml (a replay's, a benchmark's) before deploying it; they read no settings.
SCRATCH_EDITORS = {"airstack.deploy.replay", "airstack.bench.deploy_noop"}


def test_deploy_yaml_has_one_reader():
    """Only airstack.settings.deploy_file opens settings/<env>/deploy.yaml for what it says (others ask it)."""
    readers = {name for name, path in modules().items() if '"deploy.yaml"' in path.read_text()}
    assert readers - SCRATCH_EDITORS == {"airstack.settings.deploy_file"}
