"""pants.toml and the BUILD files stay true to the tree and to nox (Pants 2 cannot be installed here).

BUILD files are Python syntax. They are read with ``ast``, never executed: each top-level call
``kind(field=literal, ...)`` is one target. Only literals are allowed, plus Pants' own
``env(NAME, default)`` (read as its default) and ``parametrize(...)``.
"""

from __future__ import annotations

import ast
import configparser
import functools
import os
import posixpath
import re
import tomllib
from dataclasses import dataclass, field

import pytest

from airstack import paths
from airstack.external_images import EXTERNAL_IMAGES
from airstack.images.context import EXTRA_CA_ENV
from airstack.images.spec import discover, generated_dockerfile
from airstack.gate.lint import PYTHON_PATHS
from airstack.postgres.embedded import RUN_AS_ENV
from airstack.postgres.provider import DSN_ENV, PROVIDER_ENV

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("images/", "charts/")

ROOT = paths.repo_root()
PYTHON_KINDS = ("python_sources", "python_tests", "python_test_utils")
# Each target kind the BUILD files may use, and the backend that provides it (None: Pants core).
KIND_BACKEND = {
    **dict.fromkeys(PYTHON_KINDS + ("python_requirements",), "pants.backend.python"),
    "docker_image": "pants.backend.docker",
    "helm_chart": "pants.backend.experimental.helm",
    "shell_command": "pants.backend.shell",
    **dict.fromkeys(("files", "resources", "relocated_files"), None),
}
REQUIRED_BACKENDS = {"pants.backend.python", "pants.backend.python.lint.flake8", "pants.backend.docker",
                     "pants.backend.experimental.helm"}
# Pants' default globs where a python target gives no `sources`.
DEFAULT_SOURCES = {"python_sources": ["*.py", "!test_*.py", "!*_test.py", "!conftest.py"],
                   "python_tests": ["test_*.py", "*_test.py"], "python_test_utils": ["conftest.py"]}
SEED_FLAKE8 = {"max-line-length": "120", "max-complexity": "12"}  # seed 000's `make test`


class Parametrize(tuple):
    """``parametrize(a, b)``: the target exists once per value."""


@dataclass
class Target:
    kind: str
    folder: str  # relative to the repository root, "." for the root BUILD
    fields: dict
    env: dict[str, str] = field(default_factory=dict)  # env(NAME, default) calls

    @property
    def name(self) -> str:
        return self.fields.get("name") or posixpath.basename(self.folder)

    def patterns(self, explicit_only: bool = False) -> list[str]:
        value = self.fields.get("sources", self.fields.get("source"))
        if value is None and not explicit_only:
            value = DEFAULT_SOURCES.get(self.kind, [])
        return [value] if isinstance(value, str) else list(value or [])


def _value(node: ast.expr, env: dict[str, str]):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        args = [_value(arg, env) for arg in node.args]
        if node.func.id == "env":
            env[args[0]] = args[1]
            return args[1]
        if node.func.id == "parametrize":
            return Parametrize(args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, env) + _value(node.right, env)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item, env) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {_value(k, env): _value(v, env) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)  # ValueError for anything that is not a literal


@functools.cache
def repo_files() -> tuple[str, ...]:
    """Every file Pants would see: hidden folders (.git, .nox...), caches and build output left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"
                       and not d.endswith(".egg-info")]
        rel = os.path.relpath(dirpath, ROOT)
        found += [posixpath.normpath(posixpath.join(rel, name)) for name in filenames]
    return tuple(sorted(found))


@functools.cache
def targets() -> tuple[Target, ...]:
    found = []
    for build in (f for f in repo_files() if posixpath.basename(f) == "BUILD"):
        for stmt in ast.parse((ROOT / build).read_text(), build).body:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.args, \
                f"{build}:{stmt.lineno}: BUILD files here hold only target calls with keyword arguments"
            env: dict[str, str] = {}
            try:
                fields = {kw.arg: _value(kw.value, env) for kw in call.keywords}
            except ValueError as exc:
                raise AssertionError(f"{build}:{stmt.lineno}: only literal arguments ({exc})") from None
            found.append(Target(call.func.id, posixpath.dirname(build) or ".", fields, env))
    return tuple(found)


def of_kind(*kinds: str) -> list[Target]:
    return [t for t in targets() if t.kind in kinds]


def _regex(pattern: str) -> re.Pattern:
    """A Pants glob (``*``, ``**``, ``?``) as a regex over paths relative to the BUILD folder."""
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    return re.compile("".join({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(p, re.escape(p))
                              for p in parts) + r"\Z")


def owned(target: Target, patterns: list[str] | None = None) -> set[str]:
    patterns = target.patterns() if patterns is None else patterns
    prefix = "" if target.folder == "." else target.folder + "/"
    include = [_regex(p) for p in patterns if not p.startswith("!")]
    exclude = [_regex(p[1:]) for p in patterns if p.startswith("!")]
    return {f for f in repo_files() if f.startswith(prefix)
            and any(r.match(f[len(prefix):]) for r in include) and not any(r.match(f[len(prefix):]) for r in exclude)}


@functools.cache
def pants() -> dict:
    return tomllib.loads((ROOT / "pants.toml").read_text())


@functools.cache
def noxfile() -> ast.Module:
    return ast.parse((ROOT / "noxfile.py").read_text())


def nox_constant(name: str):
    (value,) = [n.value for n in noxfile().body if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)]
    return ast.literal_eval(value)


def runner() -> ast.Module:
    """airstack/gate/testrun.py: `nox -s test` runs pytest through it."""
    return ast.parse((ROOT / "airstack" / "gate" / "testrun.py").read_text())


def nox_pytest_options() -> list[str]:
    """The xdist options a full `nox -s test` gives pytest (literals in airstack/gate/testrun.py)."""
    options = [n.value for n in ast.walk(runner()) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and n.value.startswith(("--numprocesses=auto", "--dist="))]
    assert options, "airstack/gate/testrun.py never passes xdist options"
    return options


def flake8_options() -> list[str]:
    """The options in `nox -s lint`'s flake8 command line (airstack/gate/lint.py builds it)."""
    tree = ast.parse((ROOT / "airstack" / "gate" / "lint.py").read_text())
    argvs = [n.elts for n in ast.walk(tree) if isinstance(n, ast.List)
             and any(isinstance(e, ast.Constant) and e.value == "flake8" for e in n.elts)]
    assert argvs, "airstack/gate/lint.py never runs flake8"
    return [e.value for elts in argvs for e in elts
            if isinstance(e, ast.Constant) and e.value.startswith("-") and e.value != "-m"]


def resolves(target: Target) -> set[str]:
    value = target.fields.get("resolve") or pants()["python"]["default_resolve"]
    return set(value) if isinstance(value, Parametrize) else {value}


# ------------------------------------------------------------------------------- tests --
def test_build_files_hold_literal_target_calls():
    assert {"python_sources", "python_tests", "docker_image", "helm_chart"} <= {t.kind for t in targets()}


def test_every_target_kind_comes_from_an_enabled_backend():
    backends = set(pants()["GLOBAL"]["backend_packages"])
    assert REQUIRED_BACKENDS <= backends
    kinds = {t.kind for t in targets()}
    assert kinds <= KIND_BACKEND.keys(), f"unknown target kinds: {kinds - KIND_BACKEND.keys()}"
    assert {KIND_BACKEND[k] for k in kinds} - {None} <= backends


def test_every_image_folder_has_exactly_one_docker_image():
    folders = {f"images/{spec.name}" for spec in discover(ROOT / "images")}
    per_folder = {folder: [t.name for t in of_kind("docker_image") if t.folder == folder] for folder in folders}
    assert {folder: len(names) for folder, names in per_folder.items()} == dict.fromkeys(folders, 1)
    assert {t.folder for t in of_kind("docker_image")} == folders


@pytest.mark.parametrize("spec", discover(ROOT / "images"), ids=lambda spec: spec.name)
def test_docker_image_uses_its_dockerfile_or_the_generated_instructions(spec):
    (image,) = [t for t in of_kind("docker_image") if t.folder == f"images/{spec.name}"]
    generated = generated_dockerfile(spec)
    if generated is None:  # the folder's own Dockerfile
        assert "instructions" not in image.fields and image.fields.get("source", "Dockerfile") == "Dockerfile"
        return
    assert "source" not in image.fields, "a docker_image takes a Dockerfile or instructions, not both"
    assert image.fields["instructions"] == generated.splitlines(), \
        f"images/{spec.name}/BUILD: copy the output of `python -m airstack.images dockerfile {spec.name}`"
    assert "\n".join([*image.fields["instructions"], ""]) == generated  # the file Pants writes


@pytest.mark.parametrize("spec", discover(ROOT / "images"), ids=lambda spec: spec.name)
def test_docker_image_gets_the_base_image_airstack_passes(spec):
    (image,) = [t for t in of_kind("docker_image") if t.folder == f"images/{spec.name}"]
    base = EXTERNAL_IMAGES[spec.base]
    assert image.fields["extra_build_args"] == [f"BASE_IMAGE={base.default}"]
    assert image.env == {base.env: base.default}  # overridable with the same variable as airstack's


def test_every_chart_has_a_helm_chart_and_nothing_else_does():
    charts = {posixpath.dirname(f) for f in repo_files() if re.fullmatch(r"charts/[^/]+/Chart\.yaml", f)}
    assert charts and {t.folder for t in of_kind("helm_chart")} == charts
    assert all(t.fields.get("chart", "Chart.yaml") == "Chart.yaml" for t in of_kind("helm_chart"))


def test_every_source_pattern_matches_a_file():
    unmatched = [f"{t.folder}/BUILD {t.kind}(name={t.name!r}): {p!r}" for t in targets()
                 for p in t.patterns(explicit_only=True) if not p.startswith("!") and not owned(t, [p])]
    assert unmatched == []


def _points_at_a_target(address: str, origin: Target) -> bool:
    spec, _, name = address.removeprefix("!").partition(":")
    if spec.startswith("//"):
        spec = spec[2:]
    elif not spec or spec.startswith("./"):
        spec = posixpath.join(origin.folder, spec[2:])
    spec = posixpath.normpath(spec or ".")
    if (ROOT / spec).is_file():  # a file address: some target of that name owns the file
        return any(t.name == name and spec in owned(t) for t in targets())
    return any(t.folder == spec and t.name == (name or posixpath.basename(spec)) for t in targets())


def test_every_address_points_at_an_existing_target():
    dangling = [f"{t.folder}/BUILD {t.kind}(name={t.name!r}): {address!r}" for t in targets()
                for key in ("dependencies", "files_targets") for address in t.fields.get(key, [])
                if not _points_at_a_target(address, t)]
    assert dangling == []


def test_every_python_file_nox_lints_is_owned_by_exactly_one_python_target():
    python_files = [f for f in repo_files() if f.endswith(".py")
                    and any(f == p or f.startswith(p + "/") for p in PYTHON_PATHS)]
    assert "noxfile.py" in python_files and "airstack/__init__.py" in python_files
    owners = {f: [] for f in python_files}
    for target in of_kind(*PYTHON_KINDS):
        for f in owned(target) & owners.keys():
            owners[f].append(f"{target.folder}:{target.name}")
    assert {f: o for f, o in owners.items() if len(o) != 1} == {}


def test_every_python_target_is_in_the_one_resolve():
    """One environment for the tooling (issue 16): no target names another resolve."""
    for target in of_kind(*PYTHON_KINDS):
        assert resolves(target) == {"airflow"}, f"{target.folder}:{target.name}"


def test_the_resolve_is_noxs_lock():
    python = pants()["python"]
    assert python["enable_resolves"] and python["default_resolve"] == "airflow"
    assert set(pants()["python"]["resolves"]) == {"airflow"}
    locks = {}
    for target in of_kind("python_requirements"):
        (resolve,) = resolves(target)
        locks[resolve] = posixpath.join(target.folder, target.fields["source"])
    assert locks == {"airflow": nox_constant("DEV_LOCK")}


def test_flake8_is_configured_like_nox():
    assert pants()["flake8"]["config"] == ".flake8"
    config = configparser.ConfigParser()
    config.read(ROOT / ".flake8")
    assert {key: config["flake8"].get(key) for key in SEED_FLAKE8} == SEED_FLAKE8
    assert flake8_options() == []  # nox passes no options: .flake8 is the whole configuration


def test_pytest_args_are_pyprojects_addopts_plus_noxs_xdist_options():
    with (ROOT / "pyproject.toml").open("rb") as f:
        addopts = tomllib.load(f)["tool"]["pytest"]["ini_options"]["addopts"]
    args = pants()["pytest"]["args"]
    assert set(addopts) <= set(args)
    assert {"--numprocesses=auto", "--dist=loadgroup"} <= set(nox_pytest_options()) <= set(args)


def _module(path: str) -> str:
    roots = [r.strip("/") for r in pants()["source"]["root_patterns"]]
    root = max((r for r in roots if not r or path.startswith(r + "/")), key=len)
    return path[len(root):].lstrip("/").removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def test_source_roots_give_the_package_dags_and_tests_their_import_names():
    assert _module("airstack/__init__.py") == "airstack"
    assert _module("airstack/images/spec.py") == "airstack.images.spec"
    assert _module("dags/common/kpo.py") == "common.kpo"  # DAG files import `common.…`
    assert _module("dags/etl_postgres.py") == "etl_postgres"
    assert _module("tests/helpers.py") == "tests.helpers"  # tests import `tests.helpers`
    assert _module("tests/integration/settings_helpers.py") == "tests.integration.settings_helpers"


def test_tests_get_the_docker_and_postgres_variables():
    wanted = {"DOCKER_HOST", PROVIDER_ENV, DSN_ENV, RUN_AS_ENV, EXTRA_CA_ENV,
              *(image.env for image in EXTERNAL_IMAGES.values())}
    assert wanted <= set(pants()["test"]["extra_env_vars"])
