"""What a change affects: ``--changed-since REF`` on lint, test and build-images.

From the files changed between ``REF`` and the working tree (``git diff --name-only REF...HEAD``
plus uncommitted and untracked files), work out:

- a DAG file -> that DAG's tests;
- ``dags/common/`` -> every DAG that imports the changed module (the import graph, transitively);
  likewise a module of ``airstack/`` that a DAG helper imports (``common.kpo``: the local pod runner);
- ``dags/tasks/<project>/`` -> every DAG with a pod task of that project;
- an image folder -> that image's build and the DAGs that run it;
- a settings file -> the parity check, that environment's render and the DAG runs (settings/local);
- a module of ``airstack/`` -> the test modules that import it (transitively);
- a path a test module declares in its ``AFFECTED_BY`` -> that module; an affected DAG -> the modules that
  declare ``AFFECTED_BY_DAGS`` (the map lives in the test tree, next to the tests: :func:`declarations`);
- the locks, pyproject.toml, noxfile.py, conftests -> everything.

:func:`compute` is pure (it is given the changed paths and the tree); :func:`changed_files`
asks git.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from airstack import proc
from airstack.errors import ConfigError

# A change to any of these can change the result of any test or build.
EVERYTHING = ("requirements/", "pyproject.toml", "noxfile.py", "tests/conftest.py", "tests/helpers.py",
              "tests/__init__.py", ".sops.yaml", ".ci/")
# What a test module declares, at module level, to run on more than the changes it imports (read by AST):
#   AFFECTED_BY = ("charts/", "settings/")  # changed paths (prefixes) that run the whole module
#   AFFECTED_BY_DAGS = True                  # runs when any DAG is affected ("kpo": a DAG whose source names it)
DECLARED = "AFFECTED_BY"
DECLARED_DAGS = "AFFECTED_BY_DAGS"


@dataclass
class Affected:
    everything: bool = False
    dag_files: set[str] = field(default_factory=set)       # dags/x.py, repo-relative
    images: set[str] = field(default_factory=set)           # image folder names
    environments: set[str] = field(default_factory=set)     # settings/<env>
    test_files: set[str] = field(default_factory=set)       # tests/..., repo-relative
    reasons: list[str] = field(default_factory=list)

    def runs_test_file(self, path: str) -> bool:
        return self.everything or path in self.test_files

    def runs_dag(self, path: str) -> bool:
        return self.everything or path in self.dag_files


def changed_files(root: Path, ref: str) -> list[str]:
    """Files changed since ``ref`` (its merge base with HEAD), committed or not, untracked included."""
    base = proc.run(["git", "merge-base", ref, "HEAD"], cwd=root, check=False, what="git merge-base")
    if base.returncode != 0:
        raise ConfigError(f"--changed-since {ref}: not a git ref here ({base.stderr.strip().splitlines()[-1:]})")
    committed = proc.run(["git", "diff", "--name-only", base.stdout.strip(), "HEAD"], cwd=root, what="git diff")
    local = proc.run(["git", "diff", "--name-only", "HEAD"], cwd=root, what="git diff")
    untracked = proc.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=root, what="git ls-files")
    names = {line.strip() for out in (committed, local, untracked) for line in out.stdout.splitlines() if line.strip()}
    return sorted(names)


# ------------------------------------------------------------------------ graphs --
def _module_of(path: str, base: str = "") -> str:
    """``dags/common/kpo.py`` -> ``common.kpo`` with base ``dags``; ``airstack/proc.py`` -> ``airstack.proc``."""
    rel = (Path(path).relative_to(base) if base else Path(path)).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def import_graph(files: dict[str, str], base: str = "") -> dict[str, set[str]]:
    """``{file: files of ``files`` it imports}``; module names are paths relative to ``base`` (path -> text)."""
    modules = {_module_of(p, base): p for p in files}
    return {path: {modules[m] for m in _imports(text) if m in modules} for path, text in files.items()}


def dependents(graph: dict[str, set[str]], changed: set[str]) -> set[str]:
    """Every file whose imports reach a changed file (transitively), the changed files included."""
    hit = set(changed)
    grew = True
    while grew:
        grew = False
        for path, deps in graph.items():
            if path not in hit and deps & hit:
                hit.add(path)
                grew = True
    return hit


_PROJECT = re.compile(r"project\s*=\s*['\"]([a-z0-9-]+)['\"]")
_IMAGE = re.compile(r"(?:image|worker_image\()\s*=?\s*['\"]([a-z0-9][a-z0-9._-]*)['\"]")


# ----------------------------------------------------------------------- compute --
def compute(changed: list[str], sources: dict[str, str]) -> Affected:
    """What ``changed`` affects. ``sources``: path -> text of every .py file under dags/, airstack/, tests/."""
    result = Affected()
    for path in changed:
        if path.startswith(EVERYTHING) or path in EVERYTHING:
            result.everything = True
            result.reasons.append(f"{path}: everything depends on it")
    dag_files = {p for p in sources if p.startswith("dags/") and "/" not in p[len("dags/"):]}
    dag_graph = import_graph({p: t for p, t in sources.items() if p.startswith("dags/")}, "dags")
    changed_dags = {p for p in changed if p.startswith("dags/") and p.endswith(".py")}
    for path in changed:
        parts = Path(path).parts
        if path.startswith("dags/tasks/") and len(parts) > 3:
            project = parts[2]
            users = {d for d in dag_files if project in _PROJECT.findall(sources.get(d, ""))}
            changed_dags |= users
            result.reasons.append(f"{path}: pod script of project {project} ({', '.join(sorted(users)) or 'no DAG'})")
        if path.startswith("images/") and len(parts) > 2:
            name = parts[1]
            result.images.add(name)
            users = {d for d in dag_files if name in _IMAGE.findall(sources.get(d, ""))}
            changed_dags |= users
        if path.startswith("settings/") and len(parts) > 2:
            result.environments.add(parts[1])
            if parts[1] == "local":  # the DAG run tests import settings/local
                changed_dags |= dag_files
    changed_dags |= _dags_using_changed_tooling(changed, sources)
    result.dag_files = {p for p in dependents(dag_graph, changed_dags) if p in dag_files}
    _declared_tests(result, changed, sources)
    _package_tests(result, changed, sources)
    return result


def declarations(sources: dict[str, str]) -> dict[str, tuple[tuple[str, ...], bool | str]]:
    """Each test module's ``AFFECTED_BY`` (path prefixes) and ``AFFECTED_BY_DAGS``, for those that declare either."""
    found = {}
    for path, text in sources.items():
        if path.startswith("tests/") and Path(path).name.startswith("test_") and DECLARED in text:
            values = _module_constants(path, text, (DECLARED, DECLARED_DAGS))
            if values:
                found[path] = (values.get(DECLARED, ()), values.get(DECLARED_DAGS, False))
    return found


def _module_constants(path: str, text: str, names: tuple[str, ...]) -> dict:
    """The literal module-level values of ``names`` in one test module; a malformed one is a ConfigError."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    values = {}
    for node in tree.body:
        targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        for name in set(targets) & set(names):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            if name == DECLARED and not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"{path}: {name} (line {node.lineno}) must be a tuple of path prefixes (strings)")
            if name == DECLARED_DAGS and not isinstance(value, (bool, str)):
                raise ConfigError(f"{path}: {name} (line {node.lineno}) must be True or a text a DAG's source holds")
            values[name] = value
    return values


def _declared_tests(result: Affected, changed: list[str], sources: dict[str, str]) -> None:
    """Test modules whose AFFECTED_BY names a changed path, or whose AFFECTED_BY_DAGS an affected DAG."""
    for test_file, (prefixes, dags) in declarations(sources).items():
        if any(p.startswith(prefixes) for p in changed):
            result.test_files.add(test_file)
        elif dags is True and result.dag_files:
            result.test_files.add(test_file)
        elif isinstance(dags, str) and dags and any(dags in sources.get(p, "") for p in result.dag_files):
            result.test_files.add(test_file)


def _dags_using_changed_tooling(changed: list[str], sources: dict[str, str]) -> set[str]:
    """dags/ files that import a changed airstack module, or one that reaches it (common.kpo: the pod runner)."""
    tooling = {p: t for p, t in sources.items() if p.startswith("airstack/")}
    modules = {_module_of(p) for p in dependents(import_graph(tooling), {p for p in changed if p in tooling})}
    return {p for p, t in sources.items() if p.startswith("dags/") and _imports(t) & modules}


def _package_tests(result: Affected, changed: list[str], sources: dict[str, str]) -> None:
    """Test modules importing a changed airstack module (or a changed test helper), and changed tests."""
    files = {p: t for p, t in sources.items() if p.startswith(("airstack/", "tests/"))}
    graph = import_graph(files)  # airstack and tests are packages named from the repo root
    changed_py = {p for p in changed if p in files}
    for path in dependents(graph, changed_py):
        if path.startswith("tests/") and Path(path).name.startswith("test_"):
            result.test_files.add(path)


def read_sources(root: Path) -> dict[str, str]:
    """Every .py file under dags/, airstack/ and tests/ (path relative to ``root`` -> text)."""
    out = {}
    for folder in ("dags", "airstack", "tests"):
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out[path.relative_to(root).as_posix()] = path.read_text(errors="replace")
    return out


def for_ref(root: Path, ref: str) -> tuple[list[str], Affected]:
    changed = changed_files(root, ref)
    return changed, compute(changed, read_sources(root))


def images_affected(changed: list[str], specs, root: Path) -> list[str]:
    """Images whose build context holds a changed file (their folder, or a path image.yaml includes)."""
    names = []
    for spec in specs:
        prefixes = [spec.folder.resolve().relative_to(root.resolve()).as_posix(), *spec.include.values()]
        prefixes = [p.rstrip("/") for p in prefixes]
        if any(c == p or c.startswith(f"{p}/") for c in changed for p in prefixes):
            names.append(spec.name)
    return names
