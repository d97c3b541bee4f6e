"""Parse DAG files with Airflow's DagBag while watching what they do at parse time.

For every file this records, for real:

- SQL statements sent to any database (a SQLAlchemy ``before_cursor_execute`` listener);
- connection and variable lookups (:func:`airstack.airflow_compat.watch_lookups`): the call is
  recorded with its line and then refused, so the DAG never sees a value it could not have in production;
- which keyword arguments each ``DAG(...)`` was given, to tell an explicit ``catchup=`` from the
  default, and which DAGs ``@asset`` made (:func:`airstack.airflow_compat.watch_dags`);
- the wall time of the import.

Then each DAG (once, however often ``process_file`` returns it) gets the policy, the
serialization check and its templates rendered (:mod:`.templates`); the source gets the
import and parse-time-value rules (:mod:`.rules`).

Airflow is imported lazily: the caller sets ``AIRFLOW_HOME`` and friends first.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from airstack import airflow_compat
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
class Recording:
    """What one file did while it was parsed (:func:`recording`)."""

    path: str
    sql: list[str] = field(default_factory=list)
    accesses: list[tuple[str, str]] = field(default_factory=list)  # (rule, message)
    explicit: dict[str, set[str]] = field(default_factory=dict)  # dag_id -> kwargs given
    origin: dict[str, str] = field(default_factory=dict)  # dag_id -> rules.ASSET for @asset DAGs


_current: Recording | None = None
_installed = False
_RULES = {"variable": rules.PARSE_TIME_VARIABLE, "connection": rules.PARSE_TIME_CONNECTION}


def _caller_line(path: str) -> str:
    for frame in reversed(traceback.extract_stack()):
        if frame.filename == path:
            return f"line {frame.lineno}"
    return "while parsing"


def _refuse(kind: str, what: str, key: object) -> None:
    rec = _current
    if rec is None:
        return
    rule = _RULES[kind]
    message = f"{_caller_line(rec.path)}: {what}({key!r}) at parse time; read it inside a task (templates or context)"
    rec.accesses.append((rule, message))
    raise ParseTimeAccessError(f"[{rule}] {message}")


def _dag_made(dag_id: str, given: set[str], by_asset: bool) -> None:
    if _current is not None:
        _current.explicit[dag_id] = given
        if by_asset:
            _current.origin[dag_id] = rules.ASSET


def install_spies() -> None:
    """Install the listeners and wrappers once per process (they are inert outside :func:`recording`)."""
    global _installed
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_sql(conn, cursor, statement, parameters, context, executemany):
        if _current is not None:
            _current.sql.append(" ".join(str(statement).split())[:120])

    event.listen(Engine, "before_cursor_execute", on_sql)
    airflow_compat.watch_lookups(_refuse)
    airflow_compat.watch_dags(_dag_made)
    _installed = True


@contextmanager
def recording(path: Path) -> Iterator[Recording]:
    """What the file at ``path`` does while it is parsed in the block (:func:`install_spies` first)."""
    global _current
    rec = Recording(str(Path(path).resolve()))
    _current = rec
    try:
        yield rec
    finally:
        _current = None


def new_dagbag(dags_folder: Path):
    """An empty DagBag for the folder, set up as Airflow 3's DAG processor does (a bundle on sys.path)."""
    return airflow_compat.new_dagbag(dags_folder)


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


def process(bag, path: Path) -> tuple[list, list[str]]:
    """(each DAG once, each import error as one traceback from the file's own frame)."""
    with _importing():  # (with the logger below: quiet)
        dags, errors = airflow_compat.process_file(bag, path, logging.getLogger("airstack.dagtools.check.dagbag"))
    return unique_dags(dags), [rules.trim_traceback(e, str(path)) for e in errors.values()]


def parse_file(path: Path, dags_folder: Path) -> list:
    """The DAGs of one file (each once), parsed as the DAG processor would; an import error raises AssertionError."""
    dags, errors = process(new_dagbag(dags_folder), Path(path))
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
        path = Path(path).resolve()
        report = FileReport(_display_name(path, self.dags_folder))
        started = time.perf_counter()
        try:
            with recording(path) as rec:
                dags, errors = process(new_dagbag(self.dags_folder), path)
        finally:
            report.parse_seconds = time.perf_counter() - started
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

    def _file_findings(self, name: str, path: Path, source: str, rec: Recording, errors: list[str]) -> list:
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

    def _dag_findings(self, name: str, dag, rec: Recording) -> list[Violation]:
        found = rules.check_dag(name, dag, rec.explicit.get(dag.dag_id), self.policy, rec.origin.get(dag.dag_id))
        serialization = _check_serialization(name, dag)
        # Rendering writes into nested objects of the tasks: it comes after serialization.
        return found + serialization + templates.render_dag(name, dag)


def _check_serialization(name: str, dag) -> list[Violation]:
    """The DAG processor stores every DAG serialized; a DAG that cannot be serialized never runs."""
    try:
        airflow_compat.serialize_dag(dag)
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return [Violation(name, rules.SERIALIZATION, f"DAG {dag.dag_id!r} cannot be serialized: {exc}")]
    return []


def is_dag_file(path: Path) -> bool:
    """Whether ``path`` is meant to define DAGs: a file Airflow's safe-mode heuristic skips
    (``[core] might_contain_dag_callable``; by default: it does not mention "airflow" and "dag" or
    "asset") is not, and neither is one under ``[core] plugins_folder`` (a plugin)."""
    from airflow.configuration import conf

    plugins = Path(conf.get("core", "plugins_folder") or "/nonexistent").resolve()
    return airflow_compat.might_contain_dag(path) and not Path(path).resolve().is_relative_to(plugins)


def dag_files(dags_folder: Path) -> list[Path]:
    """The DAG files Airflow would parse in ``dags_folder``, sorted: ``.airflowignore`` honoured, and
    files that are not DAG files (:func:`is_dag_file`: ``__init__.py``, most helpers, plugins) left out."""
    return sorted(Path(p) for p in airflow_compat.dag_files(dags_folder) if is_dag_file(Path(p)))


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
