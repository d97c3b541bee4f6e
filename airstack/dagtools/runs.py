"""Run every DAG with ``dag.test()`` on Postgres, in parallel, and say why a run failed.

``nox -s test`` spends Airflow's start-up once: this process imports Airflow, migrates the
metadata database and warms the in-process Execution API (about 6 s of CPU that every
process running ``dag.test()`` otherwise pays on its first task). Then it forks workers
from that warm parent; each gets its own copy of the database (``CREATE DATABASE ...
TEMPLATE``), so runs of different DAGs never contend, and runs a share of the DAG files.

Each outcome carries, for every task that did not succeed, the exception and the last lines
of that task's log, so an assertion message can say why without digging. Tasks run with
``retries=0`` here: a failing task fails the run at once instead of waiting for its
``retry_delay``. The whole output of each DAG's run is kept in ``LOG_DIR/<dag_id>.log``.

What this needs of Airflow beyond ``dag.test()`` (the warm-up, the task-runner hook) comes from
:mod:`airstack.airflow_compat`, per release; where it cannot apply, a run is plain ``dag.test()``.
A run the harness itself could not make says ``could not run: harness: ...``, and blames no DAG.

Airflow is imported lazily; the caller configures ``AIRFLOW_HOME`` and the database first.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path

from airstack import airflow_compat
from airstack.output import flush_streams, output_to
from airstack.verdict import could_not_run

LOG_TAIL = 15  # log lines of a failed task shown in the message


@dataclass
class TaskFailure:
    task_id: str
    state: str
    error: str = ""  # "ValueError: expected 4 rows, got 3"
    where: str = ""  # "dags/x.py, line 15, in validate"
    log_tail: list[str] = field(default_factory=list)


@dataclass
class DagOutcome:
    dag_id: str
    file: str
    skip: str | None = None
    state: str = ""
    tasks: dict[str, str] = field(default_factory=dict)
    expected_tasks: list[str] = field(default_factory=list)
    failures: list[TaskFailure] = field(default_factory=list)
    seconds: float = 0.0
    log_file: str = ""
    error: str = ""  # the run itself could not start or finish (parse error, timeout)
    harness: str = ""  # the harness could not run it (not the DAG's failure): why
    reduced: str = ""  # why a failure's per-task detail is reduced on this Airflow (airstack.airflow_compat), or ""
    logical_date: datetime | None = None
    run_after: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.skip is not None or (self.state == "success" and not self.error and not self.harness
                                         and not self.failures and set(self.tasks) == set(self.expected_tasks))

    def explain(self) -> str:
        """Why the run is not a success, in the words a test failure shows."""
        return explain(self)


def explain(outcome: DagOutcome) -> str:
    """First line: the DAG and the root cause (the first task that failed with an exception, so that
    pytest's one-line summary names it); then every task that did not succeed, its log's last lines."""
    if outcome.harness:  # airstack.verdict's words: the check could not run, and the DAG is not blamed
        return could_not_run(f"harness: {outcome.harness} ({outcome.dag_id}, {outcome.file})")
    cause = next((f for f in outcome.failures if f.error), None)
    head = f"{outcome.dag_id} ({outcome.file}): "
    if outcome.error:
        head += outcome.error
    elif cause:
        head += f"task {cause.task_id!r} {cause.state}: {cause.error}"
    else:
        head += f"run {outcome.state or 'not finished'}"
    lines = [head]
    for failure in outcome.failures:
        lines.extend(f"  {line}" for line in failure_lines(failure))
    never = sorted(set(outcome.expected_tasks) - set(outcome.tasks))
    if never and not outcome.error:
        lines.append(f"  tasks that never ran: {', '.join(never)}")
    if outcome.reduced:
        lines.append(f"  ({outcome.reduced})")
    if outcome.log_file:
        lines.append(f"  whole log: {outcome.log_file}")
    return "\n".join(lines)


def failure_lines(failure: TaskFailure) -> list[str]:
    """A task that did not succeed: its exception, where in the DAG's code, its log's last lines."""
    lines = [f"task {failure.task_id!r} {failure.state}" + (f": {failure.error}" if failure.error else "")]
    if failure.where:
        lines.append(f"  at {failure.where}")
    if failure.log_tail:
        lines.append(f"  last {len(failure.log_tail)} lines of its log:")
        lines.extend(f"  | {line}" for line in failure.log_tail)
    return lines


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_tail(text: str, lines: int = LOG_TAIL, dags_folder: Path | None = None) -> list[str]:
    """The last non-empty lines of a task's log, without terminal colours; in tracebacks, only the frames
    of the DAG folder's code (Airflow's own frames say nothing about the task)."""
    kept = [_ANSI.sub("", line).rstrip() for line in text.splitlines()]
    if dags_folder is not None:
        kept = _own_frames(kept, str(dags_folder.resolve()) + os.sep)
    return [line for line in kept if line.strip()][-lines:]


def _own_frames(lines: list[str], folder: str) -> list[str]:
    out, skipping = [], False
    for line in lines:
        if line.startswith('  File "'):
            skipping = not line.startswith(f'  File "{folder}')
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            out.append(line)
    return out


def frame_origin(frames: Sequence[tuple[str, int | None, str]], dags_folder: Path, own_only: bool = False) -> str:
    """The deepest frame (filename, line, function) in the DAG folder's code, as ``dags/x.py, line N, in f``;
    else, unless ``own_only``, the deepest frame; "" when there is none."""
    folder = str(dags_folder.resolve()) + os.sep
    own = [f for f in frames if str(f[0]).startswith(folder)]
    chosen = own or ([] if own_only else list(frames))
    if not chosen:
        return ""
    name, lineno, function = chosen[-1]
    if str(name).startswith(folder):
        name = Path(name).relative_to(dags_folder.resolve().parent).as_posix()
    return f"{name}, line {lineno}, in {function}"


def error_origin(exc: BaseException, dags_folder: Path) -> str:
    """Where an exception was raised in the DAG folder's code (the deepest such frame), else its last frame."""
    return frame_origin([(f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)],
                        dags_folder)


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------ in the worker process --
class _TaskLog:
    """Per task: the slice of this process's log file written while it ran, and its error."""

    def __init__(self) -> None:
        self.slices: dict[str, tuple[int, int]] = {}
        self.errors: dict[str, BaseException] = {}


def _offset() -> int:
    flush_streams()
    return os.lseek(1, 0, os.SEEK_CUR)


def _record_tasks(record: _TaskLog):
    """Note each task's log slice and exception (through airstack.airflow_compat's hook); the undo, or None
    where the hook does not apply on this Airflow."""
    starts: dict[str, int] = {}

    def before(task_id: str) -> None:
        starts[task_id] = _offset()

    def after(task_id: str, error: BaseException | None) -> None:
        record.slices[task_id] = (starts.get(task_id, 0), _offset())
        if error is not None:
            record.errors[task_id] = error

    return airflow_compat.hook_tasks(before, after)


def _failures(tasks: dict[str, str], record: _TaskLog, log_path: Path, dags_folder: Path) -> list[TaskFailure]:
    text = log_path.read_bytes() if log_path.is_file() else b""
    out = []
    for task_id, state in sorted(tasks.items()):
        if state == "success" or state == "skipped":
            continue
        failure = TaskFailure(task_id, state)
        exc = record.errors.get(task_id)
        if exc is not None:
            failure.error, failure.where = describe(exc), error_origin(exc, dags_folder)
        if task_id in record.slices:
            start, end = record.slices[task_id]
            failure.log_tail = log_tail(text[start:end].decode(errors="replace"), dags_folder=dags_folder)
        out.append(failure)
    return out


def run_dag(dag, file: str, dags_folder: Path, log_dir: Path) -> DagOutcome:
    """One ``dag.test()`` with its output in ``log_dir/<dag_id>.log``; retries off, so a failure is final.

    Used by the forked workers, and by tests that run a DAG in their own process (pods as containers).
    """
    outcome = DagOutcome(dag.dag_id, file, expected_tasks=sorted(dag.task_ids))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{dag.dag_id}.log"
    outcome.log_file = str(log_path)
    for task in dag.tasks:
        task.retries = 0
    record = _TaskLog()
    try:
        airflow_compat.prepare()
        undo = _record_tasks(record)
    except airflow_compat.HarnessError as exc:
        outcome.harness = str(exc)
        return outcome
    outcome.reduced = "" if undo else airflow_compat.current().reduced
    started = time.perf_counter()
    try:
        with output_to(log_path):
            run = dag.test()
        outcome.state = str(getattr(run.state, "value", run.state))
        outcome.tasks = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
        outcome.logical_date, outcome.run_after = run.logical_date, run.run_after
    except Exception as exc:  # noqa: BLE001 - reported as the run's error, with its origin
        outcome.error = f"dag.test() raised {describe(exc)} at {error_origin(exc, dags_folder)}"
    finally:
        outcome.seconds = time.perf_counter() - started
        if undo:
            undo()
    outcome.failures = _failures(outcome.tasks, record, log_path, dags_folder)
    return outcome


def run_file(path: str, dags_folder: str, log_dir: str, skips: dict[str, str]) -> list[DagOutcome]:
    """Every DAG of one file (skipped ones with their reason)."""
    folder = Path(dags_folder)
    file = _display(Path(path), folder)
    from airstack.dagtools.check.parse import parse_file  # each DAG once, as the DAG processor parses it

    try:
        dags = parse_file(Path(path), folder)
    except Exception as exc:  # noqa: BLE001 - an import error: the integrity test shows the traceback
        return [DagOutcome("<import>", file, error=f"the file does not import: {describe(exc).splitlines()[0]}")]
    outcomes = []
    for dag in dags:
        if dag.dag_id in skips:
            outcomes.append(DagOutcome(dag.dag_id, file, skip=skips[dag.dag_id]))
        else:
            outcomes.append(run_dag(dag, file, folder, Path(log_dir)))
    return outcomes


def _display(path: Path, dags_folder: Path) -> str:
    try:
        return path.resolve().relative_to(dags_folder.resolve().parent).as_posix()
    except ValueError:
        return path.as_posix()


# ------------------------------------------------------------------ in the parent process --
def warm_execution_api() -> None:
    """Warm the in-process Execution API before forking the workers, where this Airflow allows it
    (:func:`airstack.airflow_compat.warm_up`); elsewhere each worker warms its own on its first task."""
    global _warmed
    if not _warmed:
        airflow_compat.warm_up()
        _warmed = True


_warmed = False


def use_database(dsn: str) -> None:
    """Point this process's Airflow at ``dsn`` (a worker's own copy of the metadata database)."""
    from airstack import airflow_env

    airflow_env.configure_process({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn})  # a worker's, for its life
    airflow_compat.reconfigure_orm()


def _init_worker(dsns, dags_folder: str, log_dir: str) -> None:
    airflow_compat.after_fork()  # a loop thread never survives a fork: a new one here
    from airstack import airflow_env

    # dag.test() serializes the DAGs of the configured bundle: the folder under test is it.
    airflow_env.configure_process({"AIRFLOW__CORE__DAGS_FOLDER": dags_folder})
    use_database(dsns.get())
    Path(log_dir).mkdir(parents=True, exist_ok=True)


class DagRuns:
    """DAG files run by forked workers; ``outcomes(file)`` waits for that file's result."""

    def __init__(self, futures: dict[str, Future], pool: ProcessPoolExecutor, timeout: float) -> None:
        self._futures, self._pool, self._timeout = futures, pool, timeout

    def outcomes(self, path: Path) -> list[DagOutcome]:
        future = self._futures[str(path)]
        try:
            return future.result(timeout=self._timeout)
        except TimeoutError:
            return [DagOutcome("<run>", str(path), error=f"the runs did not finish within {self._timeout:g} s")]
        except Exception as exc:  # noqa: BLE001 - a worker crashed or could not start: the harness's failure
            return [DagOutcome("<run>", str(path), harness=f"the worker running it failed: {describe(exc)}")]

    def finished(self, path: Path) -> list[DagOutcome]:
        """The outcomes of a file whose runs are done (nothing for one still running or failed)."""
        future = self._futures.get(str(path))
        if future is None or not future.done() or future.exception() is not None:
            return []
        return future.result()

    def close(self) -> None:
        """Stop the workers. SIGKILL after a short wait: Airflow installs its own SIGTERM handler in them."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=2)
            if process.is_alive():
                process.kill()


def start(files: Sequence[Path], dags_folder: Path, skips: dict[str, str], databases: Sequence[str],
          log_dir: Path, timeout: float = 900.0) -> DagRuns:
    """Fork one worker per database (Airflow, the ORM and the Execution API warm) and run ``files`` on them."""
    airflow_compat.disconnect()  # no connection is shared with the children; the parent reconnects on demand
    context = get_context("fork")
    queue = context.Queue()
    for dsn in databases:
        queue.put(dsn)
    pool = ProcessPoolExecutor(len(databases), mp_context=context, initializer=_init_worker,
                               initargs=(queue, str(dags_folder), str(log_dir)))
    futures = {str(f): pool.submit(run_file, str(f), str(dags_folder), str(log_dir), skips) for f in files}
    return DagRuns(futures, pool, timeout)
