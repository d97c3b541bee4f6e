"""The rules, as pure functions over a parsed DAG (duck-typed) and a file's source.

Each finding is a :class:`Violation` whose text names the file, the rule and the fix.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from airstack.dagtools.check.policy import DagPolicy

# Rule names, as shown to the user and used by tests.
IMPORT_ERROR = "import-error"
SYNTAX_ERROR = "syntax-error"
CYCLE = "cycle"
NO_DAGS = "no-dags"
DUPLICATE_DAG_ID = "duplicate-dag-id"
OWNER = "owner"
TAGS = "tags"
RETRIES = "retries"
CATCHUP = "catchup"
DEPRECATED_IMPORT = "deprecated-import"
PARSE_TIME_DB = "parse-time-db-query"
PARSE_TIME_CONNECTION = "parse-time-connection"
PARSE_TIME_VARIABLE = "parse-time-variable"
SERIALIZATION = "serialization"
TEMPLATE = "template"
PARSE_TIME_DYNAMIC = "parse-time-dynamic-value"


@dataclass(frozen=True, order=True)
class Violation:
    file: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.rule}] {self.message}"


def classify_import_error(message: str) -> str:
    """Which rule an Airflow import error breaks."""
    if "AirflowDagCycleException" in message or "Cycle detected" in message:
        return CYCLE
    if "AirflowDagDuplicatedIdException" in message:
        return DUPLICATE_DAG_ID
    if "SyntaxError" in message or "IndentationError" in message:
        return SYNTAX_ERROR
    return IMPORT_ERROR


def check_imports(file: str, source: str, policy: DagPolicy) -> list[Violation]:
    """Imports of modules and names that Airflow 3 moved or removed (``policy.deprecated_imports``).

    ``from airflow.models import DAG`` matches the table's ``airflow.models.DAG``; a use such as
    ``models.DAG`` after ``from airflow import models`` is matched by the name it resolves to.
    """
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError:
        return []  # reported as a syntax error by the import
    table = policy.deprecated_imports
    found = set()
    for node in ast.walk(tree):
        for module in _imported_names(node, table):
            replacement = _deprecated(module, table)
            if replacement:
                found.add(_deprecated_violation(file, node.lineno, module, replacement))
    aliases = import_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            root = _root_name(node)
            name = qualified_name(node, aliases)
            if root is None or name is None or _deprecated(aliases.get(root, ""), table):
                continue  # not an import, or its import is reported already
            key = next((k for k in table if name == k or name.startswith(k + ".")), None)
            if key:
                found.add(_deprecated_violation(file, node.lineno, key, table[key]))
    return sorted(found)


def _imported_names(node: ast.AST, table: dict[str, str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from airflow.operators.bash import X` is caught by its module; `from airflow import
        # operators` and `from airflow.models import DAG` only by the imported name.
        if _deprecated(node.module, table):
            return [node.module]
        return [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _deprecated(module: str, table: dict[str, str]) -> str | None:
    for prefix, replacement in table.items():
        if module == prefix or module.startswith(prefix + "."):
            return replacement
    return None


def _deprecated_violation(file: str, line: int, module: str, replacement: str) -> Violation:
    return Violation(file, DEPRECATED_IMPORT, f"line {line}: `{module}` is an Airflow 2 import; use {replacement}")


ASSET = "asset"  # a DAG made by @asset / @asset.multi: one task, no default_args, catchup always False


def check_dag(file: str, dag, explicit_kwargs: Iterable[str] | None, policy: DagPolicy,
              origin: str | None = None) -> list[Violation]:
    """Policy checks on one parsed DAG (``dag`` needs dag_id, tags and tasks).

    ``origin`` :data:`ASSET` judges the DAG by what ``@asset`` accepts: ``tags=`` on the decorator,
    owner and retries on a ``@task(...)`` stacked under it, no ``catchup`` (always False).
    """
    asset = origin == ASSET
    out: list[Violation] = []
    dag_id = dag.dag_id
    tags = set(dag.tags or ())
    where = "@asset(tags=[...])" if asset else "tags=[...]"
    if not tags:
        out.append(Violation(file, TAGS, f"DAG {dag_id!r} has no tags; set {where} with some of: "
                                         f"{', '.join(policy.allowed_tags)}"))
    unknown = sorted(tags - set(policy.allowed_tags))
    if unknown:
        out.append(Violation(file, TAGS, f"DAG {dag_id!r} uses tags not in the allowed list: {', '.join(unknown)} "
                                         f"(allowed: {', '.join(policy.allowed_tags)})"))
    if (policy.require_explicit_catchup and not asset and explicit_kwargs is not None
            and "catchup" not in set(explicit_kwargs)):
        out.append(Violation(file, CATCHUP, f"DAG {dag_id!r} does not set catchup= explicitly"))
    no_owner = sorted(t.task_id for t in dag.tasks if (t.owner or "") in policy.forbidden_owners)
    if no_owner:
        fix = ("stack @task(owner=...) under @asset" if asset else "set default_args['owner']")
        out.append(Violation(file, OWNER, f"DAG {dag_id!r}: tasks without an owner ({fix}): {', '.join(no_owner)}"))
    few_retries = sorted(t.task_id for t in dag.tasks if (t.retries or 0) < policy.min_retries)
    if few_retries:
        fix = "stack @task(retries=...) under @asset" if asset else "set default_args['retries']"
        out.append(Violation(file, RETRIES, f"DAG {dag_id!r}: tasks with retries < {policy.min_retries}: "
                                            f"{', '.join(few_retries)} ({fix})"))
    return out


def same_file_duplicates(file: str, dag_ids: list[str]) -> list[Violation]:
    """One finding per dag_id that two different DAG objects of one file share (Airflow keeps the last)."""
    counts = {dag_id: dag_ids.count(dag_id) for dag_id in dag_ids}
    return [Violation(file, DUPLICATE_DAG_ID, f"DAG id {dag_id!r} is defined {n} times in this file and Airflow "
                                              f"keeps only the last; give each DAG its own dag_id")
            for dag_id, n in sorted(counts.items()) if n > 1]


def trim_traceback(text: str, path: str) -> str:
    """An import error's traceback from the DAG file's own first frame (Airflow's importer frames dropped)."""
    lines = text.strip().splitlines()
    marker = f'File "{path}"'
    first = next((i for i, line in enumerate(lines) if marker in line), None)
    if first is None or not lines[0].startswith("Traceback"):
        return "\n".join(lines)
    return "\n".join([lines[0], *lines[first:]])


def duplicate_dag_ids(dag_files: dict[str, list[str]]) -> list[Violation]:
    """Given file -> dag ids, a violation in every file that shares a dag_id with another file."""
    owners: dict[str, list[str]] = {}
    for file, dag_ids in dag_files.items():
        for dag_id in dict.fromkeys(dag_ids):  # twice in one file is same_file_duplicates' finding
            owners.setdefault(dag_id, []).append(file)
    out = []
    for dag_id, files in owners.items():
        if len(files) > 1:
            for file in files:
                others = ", ".join(f for f in files if f != file)
                out.append(Violation(file, DUPLICATE_DAG_ID, f"DAG id {dag_id!r} is also defined in {others}"))
    return out


def template_message(dag_id: str, task_id: str, field: str, exc: BaseException) -> str:
    """What failed to render, where, and what to do: names come from the task context, params or macros."""
    kind = type(exc).__name__
    what = str(exc) if kind == "UndefinedError" else f"{kind}: {exc}"
    return (f"DAG {dag_id!r} task {task_id!r} field {field!r}: {what} (templates may use the task context, "
            f"params, var/conn/macros and the DAG's user_defined_macros)")


# ------------------------------------------------------------------- names in a module's source --
def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> what it names, from every import (``import a.b`` binds ``a``)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def qualified_name(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``dt.datetime.now`` -> ``datetime.datetime.now`` after ``import datetime as dt``; None if not imported."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = qualified_name(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    return None


# ---------------------------------------------------------------- code that runs at parse time --
_TASK_TIME_DECORATORS = {"task", "asset", "setup", "teardown"}  # their bodies run in a task, not at import
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _decorator_kind(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """"dag" for @dag, "task" for @task/@task.x/@asset/@setup/@teardown, else None."""
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        parts = ast.unparse(target).split(".")
        if _TASK_TIME_DECORATORS.intersection(parts):
            return "task"
        if "dag" in parts:
            return "dag"
    return None


def _is_main_guard(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)


def _children_at_import(node: ast.AST) -> list[ast.AST]:
    """The child nodes evaluated when ``node`` is: a def's decorators and defaults, not its body."""
    if isinstance(node, _FUNCTIONS):
        args = node.args
        own = [*node.decorator_list, *args.defaults, *(d for d in args.kw_defaults if d is not None)]
        return own + (node.body if _decorator_kind(node) == "dag" else [])
    if isinstance(node, ast.Lambda):
        return [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    if _is_main_guard(node):
        return []  # `if __name__ == "__main__":` never runs when Airflow imports the file
    return list(ast.iter_child_nodes(node))


def parse_time_nodes(tree: ast.Module) -> tuple[list[ast.AST], set[str]]:
    """Every node that runs when the file is imported, and the names of the functions it calls.

    Module level, class bodies, ``with DAG(...)`` blocks, decorator and default arguments and
    the body of a ``@dag`` function run at import; so does the body of a plain function called
    from there (a DAG factory). A ``@task``/``@asset`` body, a callable handed to an operator and
    a lambda run in a task.
    """
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, _FUNCTIONS)}
    nodes: list[ast.AST] = []
    called: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(_children_at_import(node))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
            name = node.func.id
            if name not in called and _decorator_kind(functions[name]) != "task":
                pending.extend(functions[name].body)
            called.add(name)
    return nodes, called


# Calls whose value differs on every parse (as qualified by the file's imports).
DYNAMIC_CALLS = frozenset({
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
    "pendulum.now", "pendulum.today", "pendulum.yesterday", "pendulum.tomorrow", "pendulum.DateTime.now",
    "pendulum.DateTime.utcnow", "pendulum.DateTime.today", "pendulum.Date.today",
    "time.time", "time.time_ns", "uuid.uuid1", "uuid.uuid4", "os.urandom",
    "airflow.sdk.timezone.utcnow", "airflow.utils.timezone.utcnow",
})
DYNAMIC_MODULES = ("random.", "secrets.")  # any call into them but these:
DETERMINISTIC = frozenset({"random.seed", "random.Random"})


def dynamic_call(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The source text of a call whose value changes on every parse (``datetime.now()``), else None."""
    if not isinstance(node, ast.Call):
        return None
    name = qualified_name(node.func, aliases)
    if name is None or name in DETERMINISTIC:
        return None
    if name in DYNAMIC_CALLS or name.startswith(DYNAMIC_MODULES):
        return f"{ast.unparse(node.func)}()"
    return None


def check_dynamic_values(file: str, source: str) -> list[Violation]:
    """Values that change on every parse, computed at parse time (each parse is then a new DAG version)."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError:
        return []
    aliases = import_aliases(tree)
    found = set()
    for node in parse_time_nodes(tree)[0]:
        call = dynamic_call(node, aliases)
        if call:
            found.add((node.lineno, call))
    return [Violation(file, PARSE_TIME_DYNAMIC,
                      f"line {line}: {call} changes on every parse, so every parse is a new DAG version; use a "
                      f"fixed pendulum.datetime(...) for dates, or a template ({{{{ logical_date }}}}) / compute it "
                      f"inside a task") for line, call in sorted(found)]


def no_dags_advice(file: str, source: str) -> str:
    """Why a file that mentions DAGs defines none, and what to do."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    called = parse_time_nodes(tree)[1]
    functions = [f for f in ast.walk(tree) if isinstance(f, _FUNCTIONS) and f.name not in called]
    for function in functions:
        if _decorator_kind(function) == "dag":
            return f"the @dag function `{function.name}` is never called: call `{function.name}()` at module level"
    for function in functions:
        if any(isinstance(n, ast.Call) and ast.unparse(n.func).split(".")[-1] == "DAG" for n in ast.walk(function)):
            return (f"its DAG(...) is created inside `{function.name}()`, which is never called at module level: "
                    f"call it there")
    return ("it is a helper, not a DAG file: move it to dags/common/ (listed in .airflowignore) "
            "or add it to .airflowignore")
