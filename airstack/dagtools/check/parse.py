"""Parse DAG files with Airflow's DagBag while watching what they do at parse time.

For every file this records, for real:

- SQL statements sent to any database (a SQLAlchemy ``before_cursor_execute`` listener);
- connection and variable lookups (``airflow.sdk`` and the Airflow 2 ``airflow.models``
  entry points are wrapped: the call is recorded with its line and then refused, so the
  DAG never sees a value it could not have in production);
- which keyword arguments each ``DAG(...)`` was given (to tell an explicit ``catchup=``
  from the default), and which DAGs ``@asset`` made;
- the wall time of the import.

Then each DAG (once, however often ``process_file`` returns it) gets the policy, the
serialization check and its templates rendered (:mod:`.templates`); the source gets the
import and parse-time-value rules (:mod:`.rules`).

Airflow is imported lazily: the caller sets ``AIRFLOW_HOME`` and friends first.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from airstack.dagtools.check import rules, templates
from airstack.dagtools.check.policy import DagPolicy
from airstack.dagtools.check.rules import Violation


# Findings after which a DAG cannot run as written: its run is not attempted (the integrity test tells it).
BREAKS_THE_RUN = (rules.TEMPLATE, rules.SERIALIZATION)


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
    imported: bool = True  # False: importing the file raised (an import, syntax or parse-time error)
    unrunnable: list[str] = field(default_factory=list)  # DAG ids with a finding in BREAKS_THE_RUN

    def over_budget(self, policy: DagPolicy) -> bool:
        return self.parse_seconds > policy.parse_time_budget

    def to_json(self, policy: DagPolicy) -> dict:
        """Everything the report knows, every finding included (``--json``)."""
        return {"file": self.file, "dag_ids": self.dag_ids, "tasks": self.tasks,
                "parse_seconds": self.parse_seconds, "parse_time_budget": policy.parse_time_budget,
                "over_budget": self.over_budget(policy), "sql_statements": self.sql_statements,
                "ok": not self.violations, "imported": self.imported, "unrunnable": self.unrunnable,
                "violations": [{"rule": v.rule, "message": v.message, "text": str(v)} for v in self.violations]}


@dataclass
class _Recording:
    path: str
    sql: list[str] = field(default_factory=list)
    accesses: list[tuple[str, str]] = field(default_factory=list)  # (rule, message)
    explicit: dict[str, set[str]] = field(default_factory=dict)  # dag_id -> kwargs given
    origin: dict[str, str] = field(default_factory=dict)  # dag_id -> rules.ASSET for @asset DAGs


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
    from airflow.sdk.definitions.asset.decorators import _DAGFactory
    from airflow.sdk.definitions.dag import DAG

    _wrap_function(sdk_context, "_get_variable", rules.PARSE_TIME_VARIABLE, "Variable.get")
    _wrap_function(sdk_context, "_get_connection", rules.PARSE_TIME_CONNECTION, "connection lookup")
    _wrap_classmethod(ModelVariable, "get", rules.PARSE_TIME_VARIABLE, "Variable.get")
    _wrap_classmethod(ModelConnection, "get_connection_from_secrets", rules.PARSE_TIME_CONNECTION,
                      "Connection.get_connection_from_secrets")

    original_init = DAG.__init__
    asset_factory = _DAGFactory.create_dag.__code__

    def init(self, *args, **kwargs):
        if _current is not None:
            dag_id = str(args[0] if args else kwargs.get("dag_id"))
            _current.explicit[dag_id] = set(kwargs)
            if sys._getframe(1).f_code is asset_factory:
                _current.origin[dag_id] = rules.ASSET
        original_init(self, *args, **kwargs)

    init.__wrapped__ = original_init
    DAG.__init__ = init
    _installed = True


def new_dagbag(dags_folder: Path):
    """An empty DagBag for the folder, set up as Airflow 3's DAG processor does (a bundle on sys.path)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(dags_folder), bundle_path=Path(dags_folder), bundle_name="dags-folder",
                        collect_dags=False, load_op_links=False)


def unique_dags(dags: Iterable) -> list:
    """Each DAG object once: ``process_file`` returns a DAG once per registration (``dag=dag`` after
    its ``with`` block registers it twice)."""
    return list({id(dag): dag for dag in dags}.values())


# Airflow logs each import error with its traceback, then hands it to us: ours is the one shown.
_IMPORT_LOGGERS = ("airflow.dag_processing.importers.python_importer", "airstack.dagtools.check.dagbag")


@contextmanager
def _importing() -> Iterator[None]:
    """Airflow's own import-error logging off, and whole tracebacks (trimmed to the DAG file later)."""
    from airflow.configuration import conf

    loggers = [logging.getLogger(name) for name in _IMPORT_LOGGERS]
    levels = [logger.level for logger in loggers]
    depth = conf.get("core", "dagbag_import_error_traceback_depth")
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    conf.set("core", "dagbag_import_error_traceback_depth", "1000")
    try:
        yield
    finally:
        conf.set("core", "dagbag_import_error_traceback_depth", depth)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _process(bag, path: Path) -> tuple[list, list[str]]:
    """(each DAG once, each import error as one traceback from the file's own frame)."""
    bag._log = logging.getLogger("airstack.dagtools.check.dagbag")  # instead of its structlog logger: quiet below
    with _importing():
        dags = bag.process_file(str(path), only_if_updated=False, safe_mode=False)
    return unique_dags(dags), [rules.trim_traceback(e, str(path)) for e in bag.import_errors.values()]


def parse_file(path: Path, dags_folder: Path) -> list:
    """The DAGs of one file (each once), parsed as the DAG processor would; an import error raises AssertionError."""
    dags, errors = _process(new_dagbag(dags_folder), Path(path))
    if errors:
        raise AssertionError("\n".join(errors))
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
        report = FileReport(_display_name(path, self.dags_folder))
        rec = _Recording(str(path))
        _current = rec
        started = time.perf_counter()
        try:
            dags, errors = _process(new_dagbag(self.dags_folder), path)
        finally:
            report.parse_seconds = time.perf_counter() - started
            _current = None
        report.sql_statements = len(rec.sql)
        report.dag_ids = sorted(d.dag_id for d in dags)
        report.tasks = sum(len(d.tasks) for d in dags)
        report.imported = not errors
        source = path.read_text(errors="replace")
        report.violations.extend(self._file_findings(report.file, path, source, rec, errors))
        if not dags and not errors and is_dag_file(path):
            report.violations.append(Violation(report.file, rules.NO_DAGS, "defines no DAG; "
                                               + rules.no_dags_advice(report.file, source)))
        report.violations.extend(rules.same_file_duplicates(report.file, [d.dag_id for d in dags]))
        for dag in dags:
            findings = self._dag_findings(report.file, dag, rec)
            report.violations.extend(findings)
            if any(v.rule in BREAKS_THE_RUN for v in findings):
                report.unrunnable.append(dag.dag_id)
        return report

    def _file_findings(self, name: str, path: Path, source: str, rec: _Recording, errors: list[str]) -> list:
        v = [Violation(name, rule, message) for rule, message in rec.accesses]
        if rec.sql:
            v.append(Violation(name, rules.PARSE_TIME_DB, f"{len(rec.sql)} SQL statement(s) while parsing, "
                                                          f"first: {rec.sql[0]}"))
        for error in errors:
            if ParseTimeAccessError.__name__ in error and rec.accesses:
                continue  # already reported by the specific rule above
            v.append(Violation(name, rules.classify_import_error(error), error))
        v.extend(rules.check_imports(name, source, self.policy))
        v.extend(rules.check_dynamic_values(name, source))
        return v

    def _dag_findings(self, name: str, dag, rec: _Recording) -> list[Violation]:
        found = rules.check_dag(name, dag, rec.explicit.get(dag.dag_id), self.policy, rec.origin.get(dag.dag_id))
        serialization = _check_serialization(name, dag)
        # Rendering writes into nested objects of the tasks: it comes after serialization.
        return found + serialization + templates.render_dag(name, dag)


def _check_serialization(name: str, dag) -> list[Violation]:
    """The DAG processor stores every DAG serialized; a DAG that cannot be serialized never runs."""
    from airflow.serialization.serialized_objects import DagSerialization

    try:
        DagSerialization.serialize_dag(dag)
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return [Violation(name, rules.SERIALIZATION, f"DAG {dag.dag_id!r} cannot be serialized: {exc}")]
    return []


def is_dag_file(path: Path) -> bool:
    """Whether ``path`` is meant to define DAGs: a file Airflow's safe-mode heuristic skips
    (``[core] might_contain_dag_callable``; by default: it does not mention "airflow" and "dag" or
    "asset") is not, and neither is one under ``[core] plugins_folder`` (a plugin)."""
    from airflow.configuration import conf
    from airflow.utils.file import might_contain_dag

    plugins = Path(conf.get("core", "plugins_folder") or "/nonexistent").resolve()
    return might_contain_dag(str(path), safe_mode=True) and not Path(path).resolve().is_relative_to(plugins)


def dag_files(dags_folder: Path) -> list[Path]:
    """The DAG files Airflow would parse in ``dags_folder``, sorted: ``.airflowignore`` honoured, and
    files that are not DAG files (:func:`is_dag_file`: ``__init__.py``, most helpers, plugins) left out."""
    from airflow.utils.file import list_py_file_paths

    return sorted(Path(p) for p in list_py_file_paths(str(dags_folder), safe_mode=True) if is_dag_file(Path(p)))


# ---------------------------------------------------------------------------- parallel --
_worker: Checker | None = None


def _init_worker(dags_folder: str, policy: dict) -> None:
    global _worker  # a spawned interpreter: this process's environment (Airflow's configuration) is its own
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
        chunk = max(1, len(paths) // (workers * 8))
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(str(dags_folder), policy.model_dump(by_alias=True))) as pool:
            reports = list(pool.map(_check_in_worker, [str(p) for p in paths], chunksize=chunk))
    _add_duplicates(reports)
    return reports


def _add_duplicates(reports: Iterable[FileReport]) -> None:
    by_file = {r.file: r for r in reports}
    for violation in rules.duplicate_dag_ids({r.file: r.dag_ids for r in by_file.values()}):
        by_file[violation.file].violations.append(violation)
