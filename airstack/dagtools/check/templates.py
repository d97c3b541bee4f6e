"""Render every templated field of every task, as Airflow would at run time, but without a run.

Each task's fields are rendered with the task's own Jinja environment (``task.get_template_env()``:
the DAG's ``template_searchpath``, user macros and filters, ``template_undefined``, native
rendering) and ``task.render_template`` (lists, dicts and nested objects as Airflow renders them),
against a context that has every key of Airflow 3.3's task context
(``airflow.sdk.definitions.context.Context``). Values that only exist in a run (variables,
connections, XComs, ``dag_run.conf``, asset events) are stand-ins that accept any name and touch
no database; ``params`` are the DAG's and the task's own, so a misspelt param is an error.
"""

from __future__ import annotations

from typing import Any

from airstack import airflow_compat
from airstack.dagtools.check import rules
from airstack.dagtools.check.rules import Violation


class RunTimeValue:
    """A value only known in a run (a variable, a connection, an XCom...): any attribute, key or call is fine."""

    # Jinja's sandbox asks these before a call; a stand-in must not answer them with itself.
    unsafe_callable = False
    alters_data = False

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, name: str) -> RunTimeValue:
        if name.startswith("__"):
            raise AttributeError(name)
        return RunTimeValue(f"{self._name}.{name}")

    def __getitem__(self, key: object) -> RunTimeValue:
        return RunTimeValue(f"{self._name}[{key!r}]")

    def __call__(self, *args: object, **kwargs: object) -> RunTimeValue:
        return RunTimeValue(f"{self._name}()")

    def __str__(self) -> str:
        return f"<{self._name}>"

    __repr__ = __str__

    def __iter__(self):
        return iter(())

    def __bool__(self) -> bool:
        return True

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def __add__(self, other: object) -> RunTimeValue:
        return self

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __mod__ = __add__


class _StandInTaskInstance(RunTimeValue):
    """``ti`` / ``task_instance``: the task's real identifiers, anything else (``xcom_pull``...) a stand-in."""

    def __init__(self, task, run_id: str) -> None:
        super().__init__("ti")
        self.task = task
        self.task_id = task.task_id
        self.dag_id = task.dag_id
        self.run_id = run_id
        self.try_number = 1
        self.map_index = -1
        self.max_tries = task.retries


class _StandInDagRun(RunTimeValue):
    def __init__(self, dag, run_id: str, logical_date) -> None:
        super().__init__("dag_run")
        self.dag_id = dag.dag_id
        self.run_id = run_id
        self.logical_date = logical_date
        self.conf = RunTimeValue("dag_run.conf")
        self.run_type = "manual"


def synthetic_context(task) -> dict[str, Any]:
    """Every key of Airflow 3.3's task context, for a run on 2024-01-01 (see the module docstring)."""
    import pendulum

    known_keys, macros, params = airflow_compat.template_parts(task)
    dag = task.dag
    start = pendulum.datetime(2024, 1, 1, tz="UTC")
    end = start.add(days=1)
    run_id = "manual__2024-01-01T00:00:00+00:00"
    ti = _StandInTaskInstance(task, run_id)
    context: dict[str, Any] = {key: RunTimeValue(key) for key in known_keys}
    context.update({
        "dag": dag, "task": task, "ti": ti, "task_instance": ti, "run_id": run_id,
        "dag_run": _StandInDagRun(dag, run_id, start),
        "params": params,
        "macros": macros, "inlets": list(task.inlets), "outlets": list(task.outlets),
        "logical_date": start, "data_interval_start": start, "data_interval_end": end,
        "ds": start.strftime("%Y-%m-%d"), "ds_nodash": start.strftime("%Y%m%d"), "ts": start.isoformat(),
        "ts_nodash": start.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": start.isoformat().replace("-", "").replace(":", ""),
        "task_instance_key_str": f"{dag.dag_id}__{task.task_id}__20240101",
        "prev_data_interval_start_success": start.subtract(days=1), "prev_data_interval_end_success": start,
        "prev_start_date_success": start, "prev_end_date_success": start,
        "partition_key": None, "partition_date": None, "map_index_template": task.map_index_template,
        "try_number": 1, "task_reschedule_count": 0, "test_mode": False, "expanded_ti_count": None,
        "exception": None, "reason": None, "templates_dict": getattr(task, "templates_dict", None),
    })
    return context


def _fields(task) -> list[tuple[str, Any]]:
    """(field, value) for each non-empty templated field; for a mapped task, the fields given to partial()."""
    if airflow_compat.is_mapped(task):
        source = task.partial_kwargs
        return [(name, source[name]) for name in task.template_fields if source.get(name)]
    values = [(name, getattr(task, name, None)) for name in task.template_fields]
    return [(name, value) for name, value in values if _present(value)]


def _present(value: Any) -> bool:
    try:
        return bool(value)
    except Exception:  # noqa: BLE001 - e.g. a DataFrame: Airflow renders it anyway
        return True


def render_task(file: str, task) -> list[Violation]:
    """Render each templated field of ``task``; one finding per field that does not render."""
    out = []
    env = task.get_template_env()  # a new environment per call: the policy below stays local
    # `| tojson` of a run-time stand-in: its name (real values are dumped as Airflow dumps them).
    env.policies["json.dumps_kwargs"] = {**env.policies.get("json.dumps_kwargs", {}), "default": _dump_stand_in}
    context = synthetic_context(task)
    resolved_at_run_time = airflow_compat.run_time_reference()
    for name, value in _fields(task):
        if callable(value):
            continue  # Airflow calls it with the context: code, not a template
        try:
            task.render_template(_run_time_references(value, resolved_at_run_time), context, env)
        except Exception as exc:  # noqa: BLE001 - any failure to render is the finding
            out.append(Violation(file, rules.TEMPLATE, rules.template_message(task.dag_id, task.task_id, name, exc)))
    return out


def _dump_stand_in(value: Any) -> str:
    if isinstance(value, RunTimeValue):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _run_time_references(value: Any, reference: type) -> Any:
    """``value`` with each XCom or mapped-argument reference (resolved from the run) as a stand-in."""
    if isinstance(value, reference):
        return RunTimeValue(type(value).__name__)
    if type(value) in (list, tuple, set):
        return type(value)(_run_time_references(v, reference) for v in value)
    if type(value) is dict:
        return {k: _run_time_references(v, reference) for k, v in value.items()}
    return value


def render_dag(file: str, dag) -> list[Violation]:
    return [v for task in dag.tasks for v in render_task(file, task)]
