"""Parse DAG files with Airflow's DagBag while watching what they do at parse time.

For every file this records, for real:

- SQL statements sent to any database (a SQLAlchemy ``before_cursor_execute`` listener);
- connection and variable lookups (``airflow.sdk`` and the Airflow 2 ``airflow.models``
  entry points are wrapped: the call is recorded with its line and then refused, so the
  DAG never sees a value it could not have in production);
- which keyword arguments each ``DAG(...)`` was given (to tell an explicit ``catchup=``
  from the default);
- the wall time of the import.

Airflow is imported lazily: the caller sets ``AIRFLOW_HOME`` and friends first.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from airstack.dagcheck import rules
from airstack.dagcheck.policy import DagPolicy
from airstack.dagcheck.rules import Violation


class ParseTimeAccessError(RuntimeError):
    """Raised into a DAG file that looks up a connection or a variable while it is parsed."""


@dataclass
class FileReport:
    file: str  # as shown to the user: relative to the DAG folder's parent when possible
    dag_ids: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    parse_seconds: float = 0.0
    sql_statements: int = 0
    tasks: int = 0

    def over_budget(self, policy: DagPolicy) -> bool:
        return self.parse_seconds > policy.parse_time_budget


@dataclass
class _Recording:
    path: str
    sql: list[str] = field(default_factory=list)
    accesses: list[tuple[str, str]] = field(default_factory=list)  # (rule, message)
    explicit: dict[str, set[str]] = field(default_factory=dict)  # dag_id -> kwargs given


_current: _Recording | None = None
_installed = False


def _caller_line(path: str) -> str:
    for frame in reversed(traceback.extract_stack()):
        if frame.filename == path:
            return f"line {frame.lineno}"
    return "while parsing"


def _refuse(rule: str, what: str, key: object) -> None:
    rec = _current
    if rec is None:
        return
    message = f"{_caller_line(rec.path)}: {what}({key!r}) at parse time; read it inside a task (templates or context)"
    rec.accesses.append((rule, message))
    raise ParseTimeAccessError(f"[{rule}] {message}")


def _wrap_function(module, name: str, rule: str, what: str) -> None:
    original = getattr(module, name)

    def spy(key, *args, **kwargs):
        _refuse(rule, what, key)
        return original(key, *args, **kwargs)

    spy.__wrapped__ = original
    setattr(module, name, spy)


def _wrap_classmethod(cls, name: str, rule: str, what: str) -> None:
    original = getattr(cls, name)  # bound to cls

    def spy(_cls, key, *args, **kwargs):
        _refuse(rule, what, key)
        return original(key, *args, **kwargs)

    setattr(cls, name, classmethod(spy))


def install_spies() -> None:
    """Install the listeners and wrappers once per process (they are inert outside :func:`_record`)."""
    global _installed
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_sql(conn, cursor, statement, parameters, context, executemany):
        if _current is not None:
            _current.sql.append(" ".join(str(statement).split())[:120])

    event.listen(Engine, "before_cursor_execute", on_sql)

    import airflow.sdk.execution_time.context as sdk_context
    from airflow.models.connection import Connection as ModelConnection
    from airflow.models.variable import Variable as ModelVariable
    from airflow.sdk.definitions.dag import DAG

    _wrap_function(sdk_context, "_get_variable", rules.PARSE_TIME_VARIABLE, "Variable.get")
    _wrap_function(sdk_context, "_get_connection", rules.PARSE_TIME_CONNECTION, "connection lookup")
    _wrap_classmethod(ModelVariable, "get", rules.PARSE_TIME_VARIABLE, "Variable.get")
    _wrap_classmethod(ModelConnection, "get_connection_from_secrets", rules.PARSE_TIME_CONNECTION,
                      "Connection.get_connection_from_secrets")

    original_init = DAG.__init__

    def init(self, *args, **kwargs):
        if _current is not None:
            dag_id = args[0] if args else kwargs.get("dag_id")
            _current.explicit[str(dag_id)] = set(kwargs)
        original_init(self, *args, **kwargs)

    init.__wrapped__ = original_init
    DAG.__init__ = init
    _installed = True


def new_dagbag(dags_folder: Path):
    """An empty DagBag for the folder, set up as Airflow 3's DAG processor does (a bundle on sys.path)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(dags_folder), bundle_path=Path(dags_folder), bundle_name="dags-folder",
                        collect_dags=False, load_op_links=False)


def parse_file(path: Path, dags_folder: Path) -> list:
    """The DAGs of one file, parsed as the DAG processor would; an import error raises AssertionError."""
    bag = new_dagbag(dags_folder)
    dags = bag.process_file(str(path), only_if_updated=False, safe_mode=False)
    if bag.import_errors:
        raise AssertionError("\n".join(bag.import_errors.values()))
    return dags


def _display_name(path: Path, dags_folder: Path) -> str:
    try:
        return path.relative_to(dags_folder.parent).as_posix()
    except ValueError:
        return path.as_posix()


class Checker:
    """Parse files one at a time, each into a fresh DagBag, and report on each."""

    def __init__(self, dags_folder: Path, policy: DagPolicy) -> None:
        self.dags_folder = Path(dags_folder).resolve()
        self.policy = policy
        install_spies()

    def check(self, path: str | os.PathLike[str]) -> FileReport:
        global _current
        path = Path(path).resolve()
        name = _display_name(path, self.dags_folder)
        report = FileReport(name)
        bag = new_dagbag(self.dags_folder)
        rec = _Recording(str(path))
        _current = rec
        started = time.perf_counter()
        try:
            dags = bag.process_file(str(path), only_if_updated=False, safe_mode=False)
        finally:
            report.parse_seconds = time.perf_counter() - started
            _current = None

        report.sql_statements = len(rec.sql)
        report.dag_ids = sorted(d.dag_id for d in dags)
        report.tasks = sum(len(d.tasks) for d in dags)
        v = report.violations
        v.extend(Violation(name, rule, message) for rule, message in rec.accesses)
        if rec.sql:
            v.append(Violation(name, rules.PARSE_TIME_DB, f"{len(rec.sql)} SQL statement(s) while parsing, "
                                                          f"first: {rec.sql[0]}"))
        for error in bag.import_errors.values():
            if ParseTimeAccessError.__name__ in error and rec.accesses:
                continue  # already reported by the specific rule above
            v.append(Violation(name, rules.classify_import_error(error), error.strip()))
        v.extend(rules.check_imports(name, path.read_text(errors="replace"), self.policy))
        if not dags and not bag.import_errors:
            v.append(Violation(name, rules.NO_DAGS, "defines no DAG; move helpers to dags/common/ "
                                                    "(listed in .airflowignore)"))
        for dag in dags:
            v.extend(rules.check_dag(name, dag, rec.explicit.get(dag.dag_id), self.policy))
            v.extend(_check_serialization(name, dag))
        return report


def _check_serialization(name: str, dag) -> list[Violation]:
    """The DAG processor stores every DAG serialized; a DAG that cannot be serialized never runs."""
    from airflow.serialization.serialized_objects import DagSerialization

    try:
        DagSerialization.serialize_dag(dag)
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return [Violation(name, rules.SERIALIZATION, f"DAG {dag.dag_id!r} cannot be serialized: {exc}")]
    return []


def dag_files(dags_folder: Path) -> list[Path]:
    """The files Airflow would parse in ``dags_folder`` (``.airflowignore`` honoured), sorted."""
    from airflow.utils.file import list_py_file_paths

    return sorted(Path(p) for p in list_py_file_paths(str(dags_folder), safe_mode=False))


# ---------------------------------------------------------------------------- parallel --
_worker: Checker | None = None


def _init_worker(dags_folder: str, policy: dict, environ: dict[str, str]) -> None:
    global _worker
    os.environ.update(environ)
    _worker = Checker(Path(dags_folder), DagPolicy.model_validate(policy))


def _check_in_worker(path: str) -> FileReport:
    assert _worker is not None
    return _worker.check(path)


def check_files(paths: Sequence[Path], dags_folder: Path, policy: DagPolicy, workers: int = 1) -> list[FileReport]:
    """Check every file, in this process (``workers=1``) or in a pool of fresh interpreters."""
    if workers <= 1 or len(paths) < 2:
        checker = Checker(dags_folder, policy)
        reports = [checker.check(p) for p in paths]
    else:
        environ = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")}
        chunk = max(1, len(paths) // (workers * 8))
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(str(dags_folder), policy.model_dump(by_alias=True), environ)) as pool:
            reports = list(pool.map(_check_in_worker, [str(p) for p in paths], chunksize=chunk))
    _add_duplicates(reports)
    return reports


def _add_duplicates(reports: Iterable[FileReport]) -> None:
    by_file = {r.file: r for r in reports}
    for violation in rules.duplicate_dag_ids({r.file: r.dag_ids for r in by_file.values()}):
        by_file[violation.file].violations.append(violation)
