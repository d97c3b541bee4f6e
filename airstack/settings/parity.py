"""Every connection, variable and image a DAG uses must exist in every environment.

DAG sources are read statically (no import, no key needed): ``conn_id=`` / ``*_conn_id=``
arguments, ``Variable.get``, ``BaseHook.get_connection`` / ``Connection.get``, templates
(``{{ var.value.x }}``, ``{{ var.json.x }}``, ``{{ conn.x }}``) and worker images
(``worker_image("x")``, ``project_pod(image="x")``). Module-level string constants are
followed (``CONN_ID = "warehouse_db"`` ... ``conn_id=CONN_ID``). Environments are read
through their plaintext ids only. Each missing item is told once, with every environment that
lacks it.
Sections of the settings that the deployed environments must share (``airflow.auth.oidc``) are compared by
:mod:`airstack.settings.env_parity`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from airstack.settings import env_parity
from airstack.settings.store import environments, plaintext_ids, secret_path

_TEMPLATE_VAR = re.compile(r"var\.(?:value|json)\.(?:get\(\s*['\"]([^'\"]+)['\"]|([A-Za-z_][A-Za-z0-9_]*))")
_TEMPLATE_CONN = re.compile(r"conn\.(?:get\(\s*['\"]([^'\"]+)['\"]|([A-Za-z_][A-Za-z0-9_]*))")
_IN_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
_CONNECTION_GETTERS = {("BaseHook", "get_connection"), ("Connection", "get"),
                       ("Connection", "get_connection_from_secrets")}
_IMAGE_CALLS = {"worker_image": 0, "project_pod": None}


@dataclass(frozen=True, order=True)
class Use:
    file: str
    line: int
    kind: str  # connection | variable | image
    name: str


def _constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _string(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _call_name(func: ast.AST) -> tuple[str | None, str | None]:
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        return owner, func.attr
    if isinstance(func, ast.Name):
        return None, func.id
    return None, None


def _first_arg(call: ast.Call, keyword: str, constants: dict[str, str]) -> str | None:
    if call.args:
        return _string(call.args[0], constants)
    for kw in call.keywords:
        if kw.arg == keyword:
            return _string(kw.value, constants)
    return None


def _call_uses(file: str, call: ast.Call, constants: dict[str, str]) -> list[Use]:
    uses = []
    for kw in call.keywords:
        if kw.arg and (kw.arg == "conn_id" or kw.arg.endswith("_conn_id")):
            name = _string(kw.value, constants)
            if name:
                uses.append(Use(file, call.lineno, "connection", name))
    owner, attr = _call_name(call.func)
    if (owner, attr) == ("Variable", "get"):
        name = _first_arg(call, "key", constants)
        if name:
            uses.append(Use(file, call.lineno, "variable", name))
    elif (owner, attr) in _CONNECTION_GETTERS:
        name = _first_arg(call, "conn_id", constants)
        if name:
            uses.append(Use(file, call.lineno, "connection", name))
    elif attr in _IMAGE_CALLS:
        name = (_first_arg(call, "name", constants) if _IMAGE_CALLS[attr] == 0
                else _string(next((k.value for k in call.keywords if k.arg == "image"), None), constants))
        if name:
            uses.append(Use(file, call.lineno, "image", name))
    return uses


def _template_uses(file: str, node: ast.Constant) -> list[Use]:
    uses = []
    for body in _IN_TEMPLATE.findall(node.value):
        uses += [Use(file, node.lineno, "variable", a or b) for a, b in _TEMPLATE_VAR.findall(body)]
        uses += [Use(file, node.lineno, "connection", a or b) for a, b in _TEMPLATE_CONN.findall(body)]
    return uses


def scan_source(source: str, file: str) -> list[Use]:
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError:
        return []  # the DAG integrity test reports it
    constants = _constants(tree)
    uses: list[Use] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            uses += _call_uses(file, node, constants)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "{{" in node.value:
            uses += _template_uses(file, node)
    return sorted(set(uses))


def scan_dags(dags_folder: Path, leave_out: Collection[str] = ()) -> list[Use]:
    """Every use in the DAG folder's Python files (``leave_out``: files to skip, as uses name them: dags/x.py)."""
    root = dags_folder.parent
    uses = []
    for path in sorted(dags_folder.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if name not in leave_out:
            uses += scan_source(path.read_text(errors="replace"), name)
    return uses


@dataclass(frozen=True)
class Missing:
    """One connection or variable that DAGs use and some environments lack: told once, naming them all."""

    kind: str  # connection | variable
    name: str
    used_by: tuple[str, ...]  # dags/x.py:12
    environments: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.kind} `{self.name}` (used by {', '.join(self.used_by)}) is missing from: "
                f"{', '.join(self.environments)}")


def _where(uses: list[Use]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f"{u.file}:{u.line}" for u in sorted(uses)))


def problems(root: Path, dags_folder: Path, envs: list[str] | None = None,
             leave_out: Collection[str] = ()) -> list[str]:
    """What is not in parity, each item once: a missing image, an environment whose variables are unreadable,
    a connection or variable with the environments it is missing from. An empty list: in parity."""
    uses = scan_dags(dags_folder, leave_out)
    envs = list(envs or environments(root))
    images = {p.name for p in (root / "images").iterdir() if p.is_dir()} if (root / "images").is_dir() else set()
    by_item: dict[tuple[str, str], list[Use]] = {}
    for use in uses:
        by_item.setdefault((use.kind, use.name), []).append(use)
    out = [f"image `{name}` (used by {', '.join(_where(used))}) has no folder images/{name}/"
           for (kind, name), used in sorted(by_item.items()) if kind == "image" and name not in images]
    lacking: dict[tuple[str, str], list[str]] = {}
    for env in envs:
        path = secret_path(root, env)
        ids = plaintext_ids(path)
        if ids.variables is None:
            out.append(f"{path.relative_to(root).as_posix()}: airflow.variables is an encrypted JSON string; write "
                       "it as a mapping so that variable names stay readable")
        known = {"connection": ids.connections, "variable": ids.variables}
        for kind, name in by_item:
            if kind in known and known[kind] is not None and name not in known[kind]:
                lacking.setdefault((kind, name), []).append(env)
    out += [str(Missing(kind, name, _where(by_item[kind, name]), tuple(missing)))
            for (kind, name), missing in sorted(lacking.items())]
    return out + env_parity.problems(root, envs)
