"""The rules, as pure functions over a parsed DAG (duck-typed) and a file's source.

Each finding is a :class:`Violation` whose text names the file, the rule and the fix.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from airstack.dagcheck.policy import DagPolicy

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
    """Imports of modules that Airflow 3 moved or removed (``policy.deprecated_imports``)."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError:
        return []  # reported as a syntax error by the import
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from airflow.operators.bash import X` is caught by its module; `from airflow import
            # operators` only by the imported name.
            if _deprecated(node.module, policy.deprecated_imports):
                modules = [node.module]
            else:
                modules = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            replacement = _deprecated(module, policy.deprecated_imports)
            if replacement:
                found.append(Violation(file, DEPRECATED_IMPORT,
                                       f"line {node.lineno}: `{module}` is an Airflow 2 import; use {replacement}"))
    return sorted(set(found))


def _deprecated(module: str, table: dict[str, str]) -> str | None:
    for prefix, replacement in table.items():
        if module == prefix or module.startswith(prefix + "."):
            return replacement
    return None


def check_dag(file: str, dag, explicit_kwargs: Iterable[str] | None, policy: DagPolicy) -> list[Violation]:
    """Policy checks on one parsed DAG (``dag`` needs dag_id, tags and tasks)."""
    out: list[Violation] = []
    dag_id = dag.dag_id
    tags = set(dag.tags or ())
    if not tags:
        out.append(Violation(file, TAGS, f"DAG {dag_id!r} has no tags; use some of: {', '.join(policy.allowed_tags)}"))
    unknown = sorted(tags - set(policy.allowed_tags))
    if unknown:
        out.append(Violation(file, TAGS, f"DAG {dag_id!r} uses tags not in the allowed list: {', '.join(unknown)} "
                                         f"(allowed: {', '.join(policy.allowed_tags)})"))
    if policy.require_explicit_catchup and explicit_kwargs is not None and "catchup" not in set(explicit_kwargs):
        out.append(Violation(file, CATCHUP, f"DAG {dag_id!r} does not set catchup= explicitly"))
    no_owner = sorted(t.task_id for t in dag.tasks if (t.owner or "") in policy.forbidden_owners)
    if no_owner:
        out.append(Violation(file, OWNER, f"DAG {dag_id!r}: tasks without an owner (set default_args['owner']): "
                                          f"{', '.join(no_owner)}"))
    few_retries = sorted(t.task_id for t in dag.tasks if (t.retries or 0) < policy.min_retries)
    if few_retries:
        out.append(Violation(file, RETRIES, f"DAG {dag_id!r}: tasks with retries < {policy.min_retries}: "
                                            f"{', '.join(few_retries)}"))
    return out


def duplicate_dag_ids(dag_files: dict[str, list[str]]) -> list[Violation]:
    """Given file -> dag ids, a violation in every file that shares a dag_id with another file."""
    owners: dict[str, list[str]] = {}
    for file, dag_ids in dag_files.items():
        for dag_id in dag_ids:
            owners.setdefault(dag_id, []).append(file)
    out = []
    for dag_id, files in owners.items():
        if len(files) > 1:
            for file in files:
                others = ", ".join(f for f in files if f != file)
                out.append(Violation(file, DUPLICATE_DAG_ID, f"DAG id {dag_id!r} is also defined in {others}"))
    return out
