"""``python -m airstack.dagtools.snapshot FOLDER OUTPUT``: parse a DAG folder with Airflow and write a JSON snapshot.

Runs in a process of its own (one per side of ``nox -s dag-diff``), with the environment
:func:`airstack.airflow_env.base_env` gives, so that both sides are parsed by the same
Airflow the same way. Files are parsed as :mod:`airstack.dagtools.check.parse` does (a fresh
``BundleDagBag`` per file, the DAG processor's way, its spies refusing connection and
variable lookups at parse time); an import error is recorded per file (its last line).

What a task *uses* is found as follows (exact, or not at all):

- images: a string ``image`` attribute (KubernetesPodOperator, and so ``project_pod()``;
  DockerOperator);
- connections: every string attribute whose name ends in ``conn_id``; ``{{ conn.NAME }}`` in
  templated fields; in a Python callable's own code, keyword arguments ending in ``conn_id``
  whose value is a string literal or a module-level string constant;
- variables: ``{{ var.value.NAME }}`` / ``{{ var.json.NAME }}`` (and ``var.value.get('NAME')``)
  in templated fields; ``Variable.get(KEY)`` in a Python callable's own code with KEY a
  literal or a module-level string constant.

Not detected: names computed at run time, lookups in functions the callable calls, hooks
built from connection ids passed through ``op_kwargs``, and Jinja that builds a name.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path

_TEMPLATE_VAR = re.compile(r"\bvar\.(?:value|json)\.(?:get\(\s*['\"])?([A-Za-z_][\w.-]*)")
_TEMPLATE_CONN = re.compile(r"\bconn\.(?:get\(\s*['\"])?([A-Za-z_][\w-]*)")


def _strings(value, seen=None):
    """Every string inside ``value`` (containers walked, other objects skipped)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v)


def _template_uses(task) -> tuple[set[str], set[str]]:
    variables, connections = set(), set()
    for name in getattr(task, "template_fields", ()):
        for text in _strings(getattr(task, name, None)):
            if "{{" in text or "{%" in text:
                variables.update(_TEMPLATE_VAR.findall(text))
                connections.update(_TEMPLATE_CONN.findall(text))
    return variables, connections


def _constant(node: ast.AST, scope: dict) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and isinstance(scope.get(node.id), str):
        return scope[node.id]
    return None


def callable_uses(func) -> tuple[set[str], set[str]]:
    """(variables, connections) that ``func``'s own source names exactly (see the module's docstring)."""
    variables, connections = set(), set()
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return variables, connections
    scope = getattr(func, "__globals__", {})
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        if (isinstance(target, ast.Attribute) and target.attr == "get" and isinstance(target.value, ast.Name)
                and target.value.id == "Variable" and node.args):
            key = _constant(node.args[0], scope)
            if key is not None:
                variables.add(key)
        for keyword in node.keywords:
            if keyword.arg and keyword.arg.endswith("conn_id"):
                key = _constant(keyword.value, scope)
                if key:
                    connections.add(key)
    return variables, connections


def args_digest(task) -> str:
    """A digest of what a task is given besides its id: templated fields and its callable's code.

    The id is masked in the fields, as is its DNS form (``extract_orders`` -> ``extract-orders``:
    a pod's ``name`` is often made of it).
    """
    parts = []
    dns = task.task_id.replace("_", "-").lower()
    for name in sorted(getattr(task, "template_fields", ())):
        text = f"{name}={getattr(task, name, None)!r}".replace(task.task_id, "<task_id>")
        parts.append(text.replace(dns, "<task_id>"))
    func = getattr(task, "python_callable", None)
    code = getattr(func, "__code__", None)
    if code is not None:
        consts = [c for c in code.co_consts if not inspect.iscode(c)]
        parts.append(f"callable={code.co_code.hex()}{consts!r}{code.co_names!r}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _class_name(task) -> str:
    cls = type(task)
    return f"{cls.__module__}.{cls.__name__}"


def task_snapshot(task) -> dict:
    variables, connections = _template_uses(task)
    for attr, value in vars(task).items():
        if attr.endswith("conn_id") and isinstance(value, str) and value:
            connections.add(value)
    func = getattr(task, "python_callable", None)
    if callable(func):
        more_vars, more_conns = callable_uses(func)
        variables |= more_vars
        connections |= more_conns
    image = getattr(task, "image", None)
    return {
        "task_id": task.task_id,
        "operator": _class_name(task),
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "retries": task.retries,
        "pool": task.pool,
        "queue": task.queue,
        "images": [image] if isinstance(image, str) and image else [],
        "connections": sorted(connections),
        "variables": sorted(variables),
        "args": args_digest(task),
    }


def schedule_text(dag) -> str:
    """The schedule as Airflow summarises it (``@daily``, a cron expression, ``None``, an asset expression)."""
    timetable = getattr(dag, "timetable", None)
    summary = getattr(timetable, "summary", None)
    return str(summary) if summary is not None else str(getattr(dag, "schedule", None))


def dag_snapshot(dag, file: str) -> dict:
    default_args = dict(dag.default_args or {})
    return {
        "dag_id": dag.dag_id,
        "file": file,
        "schedule": schedule_text(dag),
        "catchup": bool(dag.catchup),
        "owners": sorted({t.owner for t in dag.tasks if t.owner}),
        "retries": default_args.get("retries", 0),
        "tasks": {t.task_id: task_snapshot(t) for t in sorted(dag.tasks, key=lambda t: t.task_id)},
    }


def snapshot(folder: Path) -> dict:
    """``{"dags": {dag_id: ...}, "errors": {file: message}}`` for every DAG file Airflow would parse in ``folder``."""
    from airstack.dagtools.check import parse

    parse.install_spies()  # a connection or variable looked up at parse time fails the file, as in the gate
    dags, errors = {}, {}
    for path in parse.dag_files(folder):
        name = path.relative_to(folder.parent).as_posix()  # dags/x.py
        with parse.recording(path):
            found, failures = parse.process(parse.new_dagbag(folder), path)
        if failures:
            errors[name] = failures[0].strip().splitlines()[-1] if failures[0].strip() else "import error"
            continue
        for dag in found:
            dags[dag.dag_id] = dag_snapshot(dag, name)
    return {"dags": dags, "errors": errors}


def main(argv: list[str]) -> int:
    folder, output = Path(argv[0]).resolve(), Path(argv[1])
    output.write_text(json.dumps(snapshot(folder), indent=1, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
