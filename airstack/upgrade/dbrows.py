"""``--db-rows N`` (pure): a metadata database's worth of history as SQL, the migration plan, the figures.

The seed is written for the schema of the current lock's Airflow (3.3): ``rows`` task instances in DAG
runs of :data:`TASKS_PER_RUN` tasks over :data:`DAGS` DAGs (one DAG version each), one ``return_value``
XCom and one audit-log event per task instance, spread evenly over ``days`` up to ``now``. Every row is
made by ``INSERT ... SELECT`` over ``generate_series`` in the server, so a million task instances take
minutes, not hours (:mod:`airstack.upgrade.dbmigrate` runs it).

Which side runs what: the schema moves up with the newer Airflow's ``airflow db migrate`` (only it has
the newer migrations), and down with the newer Airflow's ``airflow db downgrade --to-version OLDER``
(the older one does not know the revisions it would have to undo). The rehearsal moves to the target,
then back, so it always shows whether a downgrade path exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from packaging.version import Version

DAGS = 20
TASKS_PER_RUN = 10
BUNDLE = "dags-folder"
OPERATORS = ("PythonOperator", "KubernetesPodOperator", "SQLExecuteQueryOperator", "EmptyOperator")
PICKLED_EMPTY_DICT = "\\x80057d942e"  # pickle.dumps({}): what Airflow stores as a task's executor_config

# Each statement is (SQL, parameters); %(now)s is the newest run's logical date, %(step)s the seconds
# between consecutive runs, %(runs)s and %(rows)s the counts.
_BUNDLE = ("INSERT INTO dag_bundle (name, active) VALUES (%(bundle)s, true) ON CONFLICT (name) DO NOTHING")
_DAG = """
INSERT INTO dag (dag_id, is_paused, is_stale, bundle_name, fileloc, relative_fileloc, owners, timetable_type,
                 timetable_summary, partition_mapper_info, max_active_tasks, max_active_runs,
                 max_consecutive_failed_dag_runs, has_task_concurrency_limits, last_parsed_time)
SELECT format('rehearsal_%%s', lpad(d::text, 2, '0')), false, false, %(bundle)s,
       format('/opt/airflow/dags/rehearsal_%%s.py', d), format('rehearsal_%%s.py', d), 'data-platform',
       'airflow.timetables.trigger.CronTriggerTimetable', '@hourly', '[]', 16, 1, 0, false, %(now)s
FROM generate_series(0, %(dags)s - 1) AS d"""
_DAG_VERSION = """
INSERT INTO dag_version (id, version_number, dag_id, bundle_name, created_at, last_updated)
SELECT gen_random_uuid(), 1, dag_id, %(bundle)s, %(now)s - interval '400 days', %(now)s
FROM dag WHERE dag_id LIKE 'rehearsal\\_%%'"""
_DAG_RUN = """
INSERT INTO dag_run (dag_id, run_id, run_type, triggered_by, state, logical_date, data_interval_start,
                     data_interval_end, run_after, queued_at, start_date, end_date, created_at, updated_at,
                     last_scheduling_decision, conf, log_template_id, clear_number, created_dag_version_id)
SELECT s.dag_id, 'scheduled__' || to_char(s.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
       'scheduled', 'timetable', CASE WHEN s.r %% 50 = 7 THEN 'failed' ELSE 'success' END,
       s.at, s.at - interval '1 hour', s.at, s.at, s.at, s.at + interval '2 seconds', s.at + interval '9 minutes',
       s.at, s.at + interval '9 minutes', s.at + interval '9 minutes', '{}'::jsonb,
       (SELECT max(id) FROM log_template), 0, v.id
FROM (SELECT r, format('rehearsal_%%s', lpad((r %% %(dags)s)::text, 2, '0')) AS dag_id,
             %(now)s - make_interval(secs => r * %(step)s) AS at
      FROM generate_series(0, %(runs)s - 1) AS r) AS s
JOIN dag_version AS v ON v.dag_id = s.dag_id"""
_TASK_INSTANCE = """
INSERT INTO task_instance (id, task_id, dag_id, run_id, map_index, start_date, end_date, duration, state,
                           try_number, max_tries, hostname, unixname, pool, pool_slots, queue, priority_weight,
                           operator, queued_dttm, scheduled_dttm, pid, executor_config, updated_at,
                           dag_version_id)
SELECT gen_random_uuid(), format('task_%%s', lpad(t::text, 2, '0')), dr.dag_id, dr.run_id, -1,
       dr.start_date + make_interval(secs => t * 30), dr.start_date + make_interval(secs => t * 30 + 25), 25.0,
       CASE WHEN dr.state = 'failed' AND t = %(tasks)s - 1 THEN 'failed' ELSE 'success' END,
       1, 2, format('airflow-worker-%%s.airflow.svc.cluster.local', dr.id %% 7), 'airflow', 'default_pool', 1,
       'default', %(tasks)s - t, (%(operators)s::text[])[1 + t %% %(n_operators)s],
       dr.start_date + make_interval(secs => t * 30 - 1), dr.start_date + make_interval(secs => t * 30 - 2),
       1000 + t, %(executor_config)s::bytea, dr.end_date, dr.created_dag_version_id
FROM (SELECT * FROM dag_run WHERE dag_id LIKE 'rehearsal\\_%%' ORDER BY id) AS dr
CROSS JOIN generate_series(0, %(tasks)s - 1) AS t
LIMIT %(rows)s"""
_XCOM = """
INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, "timestamp")
SELECT dr.id, ti.task_id, ti.map_index, 'return_value', ti.dag_id, ti.run_id,
       jsonb_build_object('rows', 1000 + dr.id %% 997, 'uri',
                          format('s3://data/%%s/%%s/%%s.parquet', ti.dag_id, ti.task_id, dr.id)),
       ti.end_date
FROM task_instance AS ti JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
WHERE ti.dag_id LIKE 'rehearsal\\_%%'"""
_LOG = """
INSERT INTO log (dttm, dag_id, task_id, map_index, event, logical_date, run_id, owner, extra, try_number)
SELECT ti.end_date, ti.dag_id, ti.task_id, ti.map_index, ti.state, dr.logical_date, ti.run_id, 'data-platform',
       json_build_object('host_name', ti.hostname, 'full_command', 'airflow tasks run')::text, ti.try_number
FROM task_instance AS ti JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
WHERE ti.dag_id LIKE 'rehearsal\\_%%'"""

SEEDED_TABLES = ("dag_run", "task_instance", "xcom", "log")


def runs_for(rows: int) -> int:
    """DAG runs that hold ``rows`` task instances (the last one may be partly filled)."""
    return -(-rows // TASKS_PER_RUN)


def seed_statements(rows: int, now: datetime, days: float) -> list[tuple[str, dict]]:
    """The SQL that adds ``rows`` task instances and their runs, XComs and log events, newest at ``now``."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    runs = runs_for(rows)
    params = {"bundle": BUNDLE, "dags": DAGS, "tasks": TASKS_PER_RUN, "now": now, "runs": runs, "rows": rows,
              "step": days * 86400.0 / runs, "operators": list(OPERATORS), "n_operators": len(OPERATORS),
              "executor_config": PICKLED_EMPTY_DICT}
    return [(sql, params) for sql in (_BUNDLE, _DAG, _DAG_VERSION, _DAG_RUN, _TASK_INSTANCE, _XCOM, _LOG)]


COUNT_SQL = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in SEEDED_TABLES)
TABLES_SQL = """
SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 2 DESC, 1 LIMIT %(limit)s"""
SIZE_SQL = "SELECT pg_database_size(current_database())"


@dataclass(frozen=True)
class Move:
    """One schema move: which side's Airflow runs it, and its arguments after ``airflow db``."""

    direction: str  # "upgrade" or "downgrade"
    runner: str  # "current" or "target"
    args: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"airflow db {' '.join(self.args)} ({self.runner}'s Airflow)"


def moves(current: str, target: str) -> tuple[Move, Move]:
    """The move to the target's schema and the move back, each run by the newer Airflow."""
    if Version(target) == Version(current):
        raise ValueError(f"the target {target} is the current version")
    newer = "target" if Version(target) > Version(current) else "current"
    up = Move("upgrade", newer, ("migrate",))
    older = current if newer == "target" else target
    down = Move("downgrade", newer, ("downgrade", "--to-version", older, "--yes"))
    return (up, down) if newer == "target" else (down, up)


@dataclass
class Step:
    """A move as it ran."""

    title: str
    direction: str
    seconds: float = 0.0
    ok: bool = False
    error: str = ""
    size_after: int = 0


@dataclass
class DbRehearsal:
    """What ``--db-rows`` measured on a seeded metadata database."""

    rows: int
    current: str
    target: str
    seed_seconds: float = 0.0
    empty_size: int = 0
    size: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    tables: list[tuple[str, int]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    error: str = ""

    @property
    def downgrade_path(self) -> bool | None:
        """Whether the move down ran (None: it did not get that far)."""
        down = [s for s in self.steps if s.direction == "downgrade"]
        return down[0].ok if down else None

    @property
    def ok(self) -> bool:
        return not self.error and len(self.steps) == 2 and all(s.ok for s in self.steps)


def per_row(size: int, rows: int) -> float:
    return size / rows if rows else 0.0


def human(size: float) -> str:
    """Bytes as B, kB, MB or GB (powers of 1024), one decimal."""
    for unit in ("B", "kB", "MB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def lines(db: DbRehearsal) -> list[str]:
    """The figures, one per line (Markdown list items without the dash)."""
    out = [f"{db.rows:,} task instances seeded at Airflow {db.current} "
           f"({', '.join(f'{t} {n:,}' for t, n in db.counts.items())}) in {db.seed_seconds:.0f} s: database "
           f"{human(db.size)} ({human(per_row(db.size - db.empty_size, db.rows))} per task instance)",
           "largest tables: " + ", ".join(f"{name} {human(size)}" for name, size in db.tables)]
    before = db.size
    for step in db.steps:
        if step.ok:
            out.append(f"{step.title}: {step.seconds:.1f} s, database {human(before)} -> {human(step.size_after)} "
                       f"({human(per_row(step.size_after - before, db.rows))} per task instance)")
            before = step.size_after
        else:
            out.append(f"{step.title}: failed after {step.seconds:.1f} s: {step.error}")
    path = db.downgrade_path
    out.append("downgrade path: " + {True: "yes (it ran)", False: "no (it failed)", None: "not tried"}[path])
    if db.error:
        out.append(f"could not finish: {db.error}")
    return out


def to_dict(db: DbRehearsal) -> dict:
    return {"rows": db.rows, "current": db.current, "target": db.target, "seed_seconds": db.seed_seconds,
            "empty_bytes": db.empty_size, "bytes": db.size, "counts": db.counts,
            "tables": [{"table": name, "bytes": size} for name, size in db.tables],
            "steps": [vars(step) for step in db.steps], "downgrade_path": db.downgrade_path, "error": db.error}


def count(db: DbRehearsal, tally) -> None:
    """Into the rehearsal's :class:`airstack.verdict.Tally`: the move to the target passes or fails; a database
    that could not be made or seeded could not run. The move back is reported, not counted (a missing
    downgrade path is worth knowing, not a reason to refuse the upgrade)."""
    if not db.steps:
        tally.add_not_run(f"--db-rows: {db.error or 'the schema moves did not run'}")
    elif db.steps[0].ok:
        tally.passed += 1
    else:
        tally.failed += 1


def todo(db: DbRehearsal) -> list[str]:
    """What to change: a move to the target that failed on the seeded database."""
    first = db.steps[0] if db.steps else None
    return [f"the metadata database ({db.rows:,} task instances): {first.title} failed: {first.error}"] \
        if first and not first.ok else []


def summary(db: DbRehearsal) -> str:
    """One line for the terminal's table."""
    if not db.steps:
        return f"could not run: {db.error}"
    moved = "; ".join(f"{s.direction} {s.seconds:.0f} s" if s.ok else f"{s.direction} failed" for s in db.steps)
    return f"{db.rows:,} task instances, {human(db.size)}: {moved}; downgrade path: " \
           f"{'yes' if db.downgrade_path else 'no' if db.downgrade_path is False else 'not tried'}"
