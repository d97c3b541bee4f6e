"""``--db-rows`` and the metadata cleanup, their pure parts: arguments, the migration plan, the seed's SQL,
the figures and how they count; the cleanup's command and values."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone

import pytest

from airstack import verdict
from airstack.deploy import db_cleanup
from airstack.errors import ConfigError
from airstack.settings.deploy_file import DatabaseCleanup
from airstack.upgrade import args, dbrows, report
from airstack.upgrade.dagresults import LaneResult
from airstack.upgrade.locks import PackageDiff

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------- arguments --
def test_db_rows_with_a_version():
    request = args.parse(["3.2.2", "--db-rows", "100000"])
    assert request.db_rows == 100_000 and request.pins == (("apache-airflow", "3.2.2"),)
    assert args.parse(["3.2.2"]).db_rows == 0


@pytest.mark.parametrize("argv", [["3.2.2", "--db-rows", "0"], ["3.2.2", "--db-rows", "-5"],
                                  ["--provider", "postgres==7.0.0", "--db-rows", "10"],
                                  ["--chart", "1.19.0", "--db-rows", "10"]])
def test_db_rows_needs_a_positive_count_and_an_airflow_version(argv):
    with pytest.raises(ConfigError, match=r"^--db-rows -?\d+: needs a positive N and an Airflow version"):
        args.parse(argv)


def test_db_rows_must_be_a_number():
    with pytest.raises(ConfigError, match="argument --db-rows: invalid int value: 'many'"):
        args.parse(["3.2.2", "--db-rows", "many"])


# ------------------------------------------------------------------------------ the plan --
def test_an_older_target_is_reached_by_the_current_airflows_downgrade_and_left_by_its_migrate():
    there, back = dbrows.moves("3.3.2", "3.2.2")
    assert (there.direction, there.runner, there.args) == ("downgrade", "current",
                                                           ("downgrade", "--to-version", "3.2.2", "--yes"))
    assert (back.direction, back.runner, back.args) == ("upgrade", "current", ("migrate",))


def test_a_newer_target_migrates_with_its_own_airflow_and_downgrades_with_it_too():
    there, back = dbrows.moves("3.2.2", "3.3.2")
    assert (there.direction, there.runner, there.args) == ("upgrade", "target", ("migrate",))
    assert (back.direction, back.runner, back.args) == ("downgrade", "target",
                                                        ("downgrade", "--to-version", "3.2.2", "--yes"))
    assert back.title == "airflow db downgrade --to-version 3.2.2 --yes (target's Airflow)"


def test_the_same_version_is_no_move():
    with pytest.raises(ValueError, match="is the current version"):
        dbrows.moves("3.3.2", "3.3.2")


# ------------------------------------------------------------------------------ the seed --
def test_the_seed_fills_runs_of_ten_tasks_and_spreads_them_over_the_days():
    statements = dbrows.seed_statements(1_005, NOW, days=365)
    tables = [sql.split("INSERT INTO ", 1)[1].split()[0] for sql, _ in statements]
    assert tables == ["dag_bundle", "dag", "dag_version", "dag_run", "task_instance", "xcom", "log"]
    params = statements[0][1]
    assert params["runs"] == 101 == dbrows.runs_for(1_005) and params["rows"] == 1_005
    assert params["step"] * params["runs"] == pytest.approx(365 * 86400)  # the oldest run is `days` old
    # Set-based: the same few statements whatever the count (no statement per row).
    assert len(dbrows.seed_statements(1_000_000, NOW, days=365)) == len(statements) == 7
    assert dbrows.runs_for(1) == 1 and dbrows.runs_for(10) == 1 and dbrows.runs_for(11) == 2


def test_the_seed_needs_a_row():
    with pytest.raises(ValueError):
        dbrows.seed_statements(0, NOW, 1)


# ----------------------------------------------------------------------------- the figures --
def _measured(back_ok: bool = True, there_ok: bool = True) -> dbrows.DbRehearsal:
    db = dbrows.DbRehearsal(100_000, "3.3.2", "3.2.2", seed_seconds=6.1, empty_size=10 * 2**20,
                            size=190 * 2**20, counts={"dag_run": 10_000, "task_instance": 100_000},
                            tables=[("task_instance", 80 * 2**20), ("log", 50 * 2**20)])
    there, back = dbrows.moves("3.3.2", "3.2.2")
    db.steps.append(dbrows.Step(there.title, there.direction, 2.5, there_ok, "" if there_ok else "exit 1: no",
                                189 * 2**20))
    if there_ok:
        db.steps.append(dbrows.Step(back.title, back.direction, 4.6, back_ok, "" if back_ok else "exit 1: x",
                                    191 * 2**20))
    return db


def test_the_figures_name_time_size_growth_tables_and_the_downgrade_path():
    lines = dbrows.lines(_measured())
    assert lines[0] == ("100,000 task instances seeded at Airflow 3.3.2 (dag_run 10,000, task_instance 100,000) "
                        "in 6 s: database 190.0 MB (1.8 kB per task instance)")
    assert lines[1] == "largest tables: task_instance 80.0 MB, log 50.0 MB"
    assert lines[2] == ("airflow db downgrade --to-version 3.2.2 --yes (current's Airflow): 2.5 s, "
                        "database 190.0 MB -> 189.0 MB (-10 B per task instance)")
    assert lines[3].startswith("airflow db migrate (current's Airflow): 4.6 s, database 189.0 MB -> 191.0 MB (21 B")
    assert lines[4] == "downgrade path: yes (it ran)"
    assert dbrows.to_dict(_measured())["downgrade_path"] is True


def test_a_failed_move_fails_the_rehearsal_and_a_failed_move_back_is_reported_not_counted():
    failed = _measured(there_ok=False)
    assert failed.downgrade_path is False and "downgrade path: no (it failed)" in dbrows.lines(failed)
    tally = verdict.Tally()
    dbrows.count(failed, tally)
    assert tally.failed == 1 and dbrows.todo(failed) == [
        "the metadata database (100,000 task instances): airflow db downgrade --to-version 3.2.2 --yes "
        "(current's Airflow) failed: exit 1: no"]
    no_way_back = dbrows.DbRehearsal(10, "3.2.2", "3.3.2")
    there, back = dbrows.moves("3.2.2", "3.3.2")
    no_way_back.steps = [dbrows.Step(there.title, there.direction, 1, True),
                         dbrows.Step(back.title, back.direction, 1, False, "exit 1: x")]
    tally = verdict.Tally()
    dbrows.count(no_way_back, tally)
    assert (tally.passed, tally.failed) == (1, 0) and no_way_back.downgrade_path is False
    assert dbrows.todo(no_way_back) == []


def test_a_database_that_could_not_be_made_could_not_run():
    db = dbrows.DbRehearsal(10, "3.3.2", "3.2.2", error="Postgres: no server")
    tally = verdict.Tally()
    dbrows.count(db, tally)
    assert tally.not_run == {"--db-rows: Postgres: no server": 1} and db.downgrade_path is None
    assert dbrows.lines(db)[-2:] == ["downgrade path: not tried", "could not finish: Postgres: no server"]


def test_the_report_carries_the_database_section():
    result = report.Report("apache-airflow==3.2.2", [], PackageDiff(), LaneResult(ran=False), LaneResult(ran=False),
                           database=_measured(there_ok=False))
    assert result.verdict == verdict.FAILED
    assert "the schema move to the target failed on the seeded database" in report.why(result)
    assert "## Metadata database (100,000 task instances)" in report.to_markdown(result)
    assert report.to_dict(result)["database"]["rows"] == 100_000
    assert report.to_dict(report.Report("x", [], PackageDiff(), LaneResult(), LaneResult()))["database"] is None


@pytest.mark.parametrize(("size", "shown"), [(512, "512 B"), (2048, "2.0 kB"), (3 * 2**20, "3.0 MB"),
                                             (5 * 2**30, "5.0 GB"), (-10, "-10 B")])
def test_sizes_read_as_people_write_them(size, shown):
    assert dbrows.human(size) == shown


# ------------------------------------------------------------------------------- cleanup --
@pytest.mark.parametrize(("airflow", "flag"), [("3.3.2", True), ("3.2.2", True), ("3.1.8", False), ("2.10.5", False)])
def test_the_error_flag_only_where_airflow_has_it(airflow, flag):
    assert ("--error-on-cleanup-failure" in db_cleanup.clean_argv("2026-01-01", airflow)) is flag


def test_the_cronjob_computes_its_cutoff_then_execs_the_clean():
    job = db_cleanup.values(DatabaseCleanup(retention_days=45, schedule="@daily"), "3.3.2")["databaseCleanup"]
    assert job["enabled"] is True and job["schedule"] == "@daily" and job["command"] == ["bash", "-c"]
    (script,) = job["args"]
    assert script.startswith('CLEAN_TS="$(date -u -d "-45 days" +%Y-%m-%dT%H:%M:%S+00:00)" && ')
    assert shlex.split(script.split(" && exec ", 1)[1]) == db_cleanup.clean_argv(db_cleanup.CUTOFF, "3.3.2")
    assert "{{" not in script  # the chart passes args through tpl


def test_no_retention_no_cronjob():
    assert db_cleanup.values(None, "3.3.2") == {}
    assert DatabaseCleanup(retention_days=1).schedule == "0 3 * * 0"


@pytest.mark.parametrize("schedule", ["0 3 * * *", "*/15 * * * 1-5", "@weekly", "0 0 1 JAN *"])
def test_cron_schedules_kubernetes_takes(schedule):
    assert DatabaseCleanup(retention_days=1, schedule=schedule).schedule == schedule


@pytest.mark.parametrize("schedule", ["daily", "0 3 * *", "0 3 * * * *", "@every 5m", "0 3 * * *; rm"])
def test_other_schedules_are_refused(schedule):
    with pytest.raises(ValueError, match="String should match pattern"):
        DatabaseCleanup(retention_days=1, schedule=schedule)


def test_the_runtime_lock_names_its_airflow(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "runtime.txt").write_text("apache-airflow==3.3.2 \\\n    --hash=sha256:aa\n")
    assert db_cleanup.runtime_airflow(tmp_path) == "3.3.2"
    (tmp_path / "requirements" / "runtime.txt").write_text("apache-airflow-core==3.3.2\n")
    with pytest.raises(ConfigError, match="^requirements/runtime.txt: no apache-airflow==VERSION pin$"):
        db_cleanup.runtime_airflow(tmp_path)


def test_db_rows_to_the_locks_own_version_is_refused_before_anything_runs(tmp_path):
    from airstack import paths
    from airstack.upgrade import rehearse

    request = args.parse(["3.3.2", "--db-rows", "10"])
    with pytest.raises(ConfigError, match=r"^--db-rows: the target 3.3.2 is the current version$"):
        rehearse.rehearse(request, paths.repo_root(), ["uv-is-not-run"], progress=None)
