"""The shape of airstack/ (issues 16, 25): the rooms and what each may import, module and test-file sizes;
dags/ and plugins/ free of it.

The Docker SDK's one importer is checked in test_docker_client.py, the product's independence of
tests/ in test_bench_registry.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airstack import paths

ROOT = paths.repo_root()
MAX_LINES = 400  # a module under airstack/, and a test file under tests/
BASE = ("errors", "paths", "output", "proc", "cli", "config_files", "verdict", "airflow_env", "airflow_compat")
# The package map: each room of airstack/ (a package or a top-level module) and the rooms it may import
# (function-level imports included). Rooms import only downward: the map has no cycle but DEPLOY_STANDINS.
ROOMS: dict[str, tuple[str, ...]] = {
    "errors": (), "paths": (), "output": (), "git_auth": (), "ci": (), "__main__": (),
    "proc": ("errors",), "airflow_env": ("errors", "proc"),         # the one writer of the process environment
    "airflow_compat": ("errors", "airflow_env"),                    # Airflow's internals' one user
    "cli": ("errors",), "config_files": ("errors",), "verdict": ("errors",),
    "docker_client": ("errors",),                                   # the Docker SDK's one importer
    "external_images": ("errors", "docker_client"),
    "metrics": BASE,                                                # the StatsD bridge (local env)
    "gate": BASE,                                                   # lanes, lint, affected, the pytest plugins
    "dagtools": BASE,                                               # check, runs, snapshot, diff
    "settings": BASE,                                               # settings as code
    "postgres": (*BASE, "docker_client", "external_images"),
    "git_bundle": (*BASE, "git_auth", "settings"),  # the bundle deploys and the local env share (deploy: dag_bundles)
    "images": (*BASE, "docker_client", "external_images", "settings", "gate"),
    "localenv": (*BASE, "docker_client", "external_images", "settings", "postgres", "images", "git_bundle",
                 "dagtools"),
    "deploy": (*BASE, "git_auth", "settings", "images", "git_bundle", "standins"),
    "standins": (*BASE, "deploy"),                                  # for tests, `nox -s ci` and benchmarks
    "upgrade": (*BASE, "settings", "postgres", "images", "git_bundle", "deploy", "gate"),
    "bench": (*BASE, "docker_client", "external_images", "settings", "postgres", "images", "git_bundle",
              "localenv", "deploy", "standins", "dagtools", "gate"),
}
# The pairs docs/architecture.md draws: a lower layer imports nothing from the higher ones (a check of
# ROOMS' own, kept for the diagram).
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
                         "airstack.upgrade", "airstack.gate", "airstack.postgres"),
}
# replay.py deploys against the stand-ins; the helm stand-in reuses the deploy's values merge and masking.
DEPLOY_STANDINS = {("deploy", "standins"), ("standins", "deploy")}


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


def room_of(module: str) -> str:
    """``airstack.gate.lint`` -> ``gate``; ``airstack.proc`` -> ``proc``; ``airstack`` -> ``airstack``."""
    return module.split(".")[1] if "." in module else module


def rooms() -> dict[str, dict[str, Path]]:
    found: dict[str, dict[str, Path]] = {}
    for name, path in modules().items():
        if name != "airstack":
            found.setdefault(room_of(name), {})[name] = path
    return found


def test_no_module_is_over_the_limit():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert sizes and {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_no_test_file_is_over_the_limit():
    """Test files follow the modules' rule: split along their topics (whole test functions moved)."""
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
             for path in (ROOT / "tests").rglob("*.py") if "__pycache__" not in path.parts}
    assert sizes and {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_every_room_is_in_the_package_map():
    """A new package or top-level module says what it may import before it lands."""
    assert set(rooms()) - set(ROOMS) == set()


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_a_room_imports_only_what_the_map_allows(room):
    mine = rooms().get(room)
    if mine is None:
        pytest.skip(f"airstack.{room} is not here (moved)")
    allowed = {room, *ROOMS[room]}
    found = {name: sorted(i for i in imported(path) if i.startswith("airstack.") and room_of(i) not in allowed
                          and room_of(i) in ROOMS)
             for name, path in mine.items()}
    assert {name: names for name, names in found.items() if names} == {}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_imports_only_downward(layer):
    above = LAYERS[layer]
    mine = {name: path for name, path in modules().items() if name == layer or name.startswith(f"{layer}.")}
    assert mine, f"no module {layer}"
    upward = {name: sorted(i for i in imported(path) if i.startswith(above)) for name, path in mine.items()}
    assert {name: found for name, found in upward.items() if found} == {}


def test_rooms_import_only_downward():
    """The map itself has no cycle (but the deploy and its stand-ins): every room sits above what it imports."""
    placed: set[str] = set()
    left = dict(ROOMS)
    while left:
        ready = {r for r, deps in left.items() if all(d in placed or (r, d) in DEPLOY_STANDINS for d in deps)}
        assert ready, f"a cycle among {sorted(left)}"
        placed |= ready
        left = {r: deps for r, deps in left.items() if r not in ready}


# They edit a scratch copy's deploy.yaml (a replay's, a benchmark's) before deploying it; they read no settings.
SCRATCH_EDITORS = {"airstack.deploy.replay", "airstack.bench.deploy_noop"}


def test_deploy_yaml_has_one_reader():
    """Only airstack.settings.deploy_file opens settings/<env>/deploy.yaml for what it says (others ask it)."""
    readers = {name for name, path in modules().items() if '"deploy.yaml"' in path.read_text()}
    assert readers - SCRATCH_EDITORS == {"airstack.settings.deploy_file"}


def tooling_imports(source: str) -> set[str]:
    """What a file imports of ``airstack``: import statements anywhere, and ``import_module``/``__import__``
    of a literal name."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return {n for n in names if n == "airstack" or n.startswith("airstack.")}


@pytest.mark.parametrize(("source", "found"), [
    ("def f():\n    from airstack.localenv import pods\n", {"airstack.localenv"}),
    ("import airstack\n", {"airstack"}),
    ("import importlib\nimportlib.import_module('airstack.localenv.pods')\n", {"airstack.localenv.pods"}),
    ("from . import airstack\nimport airstack_extras\n", set()),
])
def test_tooling_imports_are_found_where_they_hide(source, found):
    assert tooling_imports(source) == found


def test_dags_and_plugins_import_no_tooling():
    """What every DAG bundle and the runtime image ship knows nothing of airstack: the local env's pods run
    through a cluster policy it sets (airstack/localenv/pod_policy.py), not through the DAGs' code."""
    files = [p for folder in ("dags", "plugins") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert any(p.name == "kpo.py" for p in files)
    found = {p.relative_to(ROOT).as_posix(): sorted(tooling_imports(p.read_text())) for p in files}
    assert {path: names for path, names in found.items() if names} == {}


# Airflow's public interface, as its docs define it (docs/apache-airflow/public-airflow-interface, 3.x): the Task
# SDK (airflow.sdk) for DAG authors; the providers' operators, hooks, sensors...; and what extends Airflow or is
# documented with it: exceptions, configuration (`conf`), the Connection/Variable/Pool models, cluster policies,
# secrets backends. Anything else (airflow.settings, airflow.utils.*, dag_processing, serialization, the SDK's
# definitions/execution_time, private modules) is an internal: only airstack/airflow_compat.py uses those.
AIRFLOW_PUBLIC = {"airflow.sdk", "airflow.sdk.exceptions", "airflow.exceptions", "airflow.configuration",
                  "airflow.models.connection", "airflow.models.variable", "airflow.models.pool",
                  "airflow.policies", "airflow.secrets"}
PROVIDER_KINDS = {"operators", "hooks", "sensors", "triggers", "decorators", "transfers", "notifications", "secrets"}
AIRFLOW_SEAM = "airstack/airflow_compat.py"


def airflow_imports(source: str) -> set[str]:
    """The Airflow modules a file imports, anywhere in it (``from airflow import settings``: airflow.settings),
    ``import_module`` of a literal name included."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names |= {f"airflow.{a.name}" for a in node.names} if node.module == "airflow" else {node.module}
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return {n for n in names if n == "airflow" or n.startswith("airflow.")}


def airflow_public(module: str) -> bool:
    parts = module.split(".")
    if any(part.startswith("_") for part in parts):
        return False
    return module in AIRFLOW_PUBLIC or (parts[:2] == ["airflow", "providers"] and bool(PROVIDER_KINDS & set(parts)))


@pytest.mark.parametrize(("source", "found"), [
    ("def f():\n    from airflow import settings\n", {"airflow.settings"}),
    ("import airflow.sdk.execution_time.context as c\n", {"airflow.sdk.execution_time.context"}),
    ("import importlib\nimportlib.import_module('airflow.utils.db')\n", {"airflow.utils.db"}),
    ("from airflow.sdk import DAG\nimport airflowctl\n", {"airflow.sdk"}),
])
def test_airflow_imports_are_found_where_they_hide(source, found):
    assert airflow_imports(source) == found


@pytest.mark.parametrize(("module", "public"), [
    ("airflow.sdk", True), ("airflow.providers.postgres.hooks.postgres", True),
    ("airflow.providers.cncf.kubernetes.operators.pod", True), ("airflow.models.variable", True),
    ("airflow.sdk.definitions.dag", False), ("airflow.settings", False), ("airflow.utils.session", False),
    ("airflow.providers.cncf.kubernetes.utils.pod_manager", False), ("airflow.providers.x.hooks._internal", False),
])
def test_the_allowlist_tells_public_from_internal(module, public):
    assert airflow_public(module) is public


def test_only_the_seam_imports_airflow_internals():
    """Issue 25: an Airflow upgrade breaks one file. The product (airstack/, dags/, plugins/) and the DAG tests'
    conftest import Airflow's public modules only; its internals, one capability per function, in the seam."""
    files = [*(ROOT / "airstack").rglob("*.py"), *(ROOT / "dags").rglob("*.py"), *(ROOT / "plugins").rglob("*.py"),
             ROOT / "tests" / "dags" / "conftest.py"]
    found = {p.relative_to(ROOT).as_posix(): sorted(m for m in airflow_imports(p.read_text()) if not airflow_public(m))
             for p in files}
    seam = found.pop(AIRFLOW_SEAM)
    assert "airflow.settings" in seam  # what the exemption is for
    assert {path: names for path, names in found.items() if names} == {}


# ------------------------------------------------------------------------- process environment --
# The one module of airstack/ that writes this process's environment: airflow_env.configured (restored on exit).
ENVIRON_WRITER = "airstack.airflow_env"
ENVIRON_METHODS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}
OS_WRITERS = {"putenv", "unsetenv"}


def _is_environ(node: ast.AST, os_names: set[str], aliases: set[str]) -> bool:
    """``os.environ`` (``os.environb``, ``os`` under any name), or a name bound to it."""
    if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb"):
        return isinstance(node.value, ast.Name) and node.value.id in os_names
    return isinstance(node, ast.Name) and node.id in aliases


def _may_be_environ(node: ast.AST, os_names: set[str], aliases: set[str]) -> bool:
    """What a name bound to it may hold: ``os.environ``, ``os.environ if ... else x``, ``x or os.environ``."""
    if isinstance(node, ast.IfExp):
        return any(_may_be_environ(n, os_names, aliases) for n in (node.body, node.orelse))
    if isinstance(node, ast.BoolOp):
        return any(_may_be_environ(n, os_names, aliases) for n in node.values)
    return _is_environ(node, os_names, aliases)


def environ_writes(source: str) -> list[int]:
    """The lines of ``source`` that write this process's environment: an item set or deleted, a mutating
    method called, ``os.putenv``/``os.unsetenv``, on ``os.environ`` or on a name bound to it (whatever the
    name ``os`` or ``environ`` is imported under)."""
    tree = ast.parse(source)
    os_names, aliases, os_writers = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            aliases |= {a.asname or a.name for a in node.names if a.name in ("environ", "environb")}
            os_writers |= {a.asname or a.name for a in node.names if a.name in OS_WRITERS}
    for _ in range(2):  # an alias of an alias
        for node in ast.walk(tree):
            value = getattr(node, "value", None)
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AnnAssign, ast.NamedExpr)) else []
            if value is not None and targets and _may_be_environ(value, os_names, aliases):
                aliases |= {t.id for t in targets if isinstance(t, ast.Name)}
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)) \
                and _is_environ(node.value, os_names, aliases):
            lines.add(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ENVIRON_METHODS \
                    and _is_environ(func.value, os_names, aliases):
                lines.add(node.lineno)
            elif isinstance(func, ast.Attribute) and func.attr in OS_WRITERS and isinstance(func.value, ast.Name) \
                    and func.value.id in os_names or isinstance(func, ast.Name) and func.id in os_writers:
                lines.add(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize(("source", "found"), [
    ("import os\nos.environ['A'] = '1'\n", [2]),
    ("import os\ndel os.environ['A']\n", [2]),
    ("import os\nos.environ.update(A='1')\nos.environ.setdefault('B', '2')\nos.environ.pop('C', None)\n", [2, 3, 4]),
    ("import os\nos.environ.clear()\nos.putenv('A', '1')\nos.unsetenv('A')\n", [2, 3, 4]),
    ("import os as o\ndef f(env=None):\n    env = o.environ if env is None else env\n    env['A'] = '1'\n", [4]),
    ("from os import environ as e, putenv\ne.update({})\nputenv('A', '1')\n", [2, 3]),
    ("import os\nmine = os.environ\nother = mine\nother.pop('A')\n", [4]),
    ("import os\nx = os.environ.get('A')\nenv = dict(os.environ)\nenv['A'] = '1'\nd = {}\nd.update(os.environ)\n", []),
])
def test_environ_writes_are_found_where_they_hide(source, found):
    assert environ_writes(source) == found


def test_the_process_environment_is_written_in_one_module():
    """Library code (benchmarks included) changes this process's environment only through
    ``airstack.airflow_env.configured``, which puts it back; children get theirs through ``env=``."""
    found = {name: environ_writes(path.read_text()) for name, path in modules().items()}
    assert found[ENVIRON_WRITER], "the one writer writes nothing: is it still the one?"
    assert any(name.startswith("airstack.bench.") for name in found)
    assert {name: lines for name, lines in found.items() if lines and name != ENVIRON_WRITER} == {}
