"""Every benchmark `nox -s bench -- NAME` accepts resolves to a module of airstack/bench with a `run(args)`,
and the README lists the same names (the benchmarks themselves are not run here: timing needs a quiet machine)."""

import importlib
import inspect
import re

import pytest

from airstack import paths
from airstack.bench import BENCHMARKS, load
from airstack.bench.__main__ import parser

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("README.md",)  # it lists the benchmarks


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_each_name_imports_and_has_run(name):
    run = load(name)
    assert callable(run) and run.__module__ == f"airstack.bench.{BENCHMARKS[name]}"
    assert list(inspect.signature(run).parameters) == ["args"]


def test_the_command_line_accepts_exactly_the_registry():
    (names,) = [a for a in parser()._actions if a.dest == "names"]
    assert [c for c in names.choices if c != []] == list(BENCHMARKS) and [] in names.choices
    args = parser().parse_args(["settings-import", "--sizes", "10"])
    assert args.names == ["settings-import"] and args.sizes == [10]


def test_the_deploy_side_of_deploy_noop_has_its_entry_point():
    """`run` starts `python -m airstack.bench.deploy_noop`: that module's main()."""
    module = importlib.import_module("airstack.bench.deploy_noop")
    assert callable(module.main) and "airstack.bench.deploy_noop" in inspect.getsource(module.run)


def test_the_readme_lists_every_benchmark():
    row = next(line for line in (paths.repo_root() / "README.md").read_text().splitlines()
               if line.startswith("| `nox -s bench -- NAME` |"))
    assert set(re.findall(r"`([a-z-]+)`", row.split("|")[2])) >= set(BENCHMARKS)


def test_no_module_of_airstack_imports_the_tests():
    """The product imports nothing from tests/ (stand-ins live in airstack/standins/)."""
    import ast

    found = []
    for path in (paths.repo_root() / "airstack").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert found == []
