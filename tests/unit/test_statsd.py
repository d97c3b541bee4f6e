"""airstack.metrics.statsd: StatsD parsing, the official chart's statsd-exporter mapping, the exporter's aggregation.

The metrics the alerts use are produced by Airflow 3.3 itself: its own stats module, configured by its own
[metrics] options, called from the real call sites (scheduler and DAG processor heartbeats, a DagRun's
duration, the executor's gauges), with the StatsD client swapped for one that keeps the lines it would send.
"""

from __future__ import annotations

import datetime
import math

import pytest
import statsd

from airstack.metrics.statsd import (
    AIRFLOW_MAPPINGS,
    Mapper,
    MappingRule,
    MetricStore,
    escape_metric_name,
    map_name,
    parse_datagram,
    parse_line,
)

SENT: list[str] = []


class CapturingStatsClient(statsd.StatsClient):
    """Airflow's StatsD client ([metrics] statsd_custom_client_path), keeping what it would put on the wire."""

    def _send(self, data: str) -> None:
        SENT.append(data)


@pytest.fixture
def airflow_statsd(monkeypatch):
    """Airflow's stats module set up from [metrics] (statsd_on, the default prefix `airflow`) with the capturing
    client; yields a function that emits what the alerts use and returns the StatsD lines sent."""
    from airflow._shared.observability.metrics import stats
    from airflow.executors import executor_loader
    from airflow.sdk._shared.observability.metrics import stats as sdk_stats

    for module in (stats, sdk_stats):  # the stats set-up of core and Task SDK, restored afterwards
        for name in ("_factory", "_backend", "_export_legacy_names"):
            monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.setattr(executor_loader, "_executor_names", [])  # Airflow caches the executor list
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_CUSTOM_CLIENT_PATH", f"{__name__}.CapturingStatsClient")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor")
    SENT.clear()
    yield emit_alert_metrics
    SENT.clear()


def emit_alert_metrics() -> list[str]:
    """Call the Airflow code that sends the alerts' metrics; return the StatsD lines it sent."""
    from airflow._shared.observability.metrics import stats
    from airflow.configuration import conf
    from airflow.jobs.dag_processor_job_runner import DagProcessorJobRunner
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dagrun import DagRun
    from airflow.observability.metrics import stats_utils
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    # What the scheduler, the DAG processor and every executor do when they start.
    stats.initialize(factory=stats_utils.get_stats_factory(),
                     export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))
    SENT.clear()
    # A session is passed so that no database is opened: the heartbeat callbacks only send the metric.
    SchedulerJobRunner.__new__(SchedulerJobRunner).heartbeat_callback(session=None)
    DagProcessorJobRunner.__new__(DagProcessorJobRunner).heartbeat_callback(session=None)
    run = DagRun(dag_id="etl.orders", run_id="scheduled__1", run_type=DagRunType.SCHEDULED, state=DagRunState.FAILED)
    run.end_date = datetime.datetime(2026, 1, 1, 6, 1, 30, tzinfo=datetime.timezone.utc)
    run.start_date = run.end_date - datetime.timedelta(seconds=90)
    run._emit_duration_stats_for_finished_state()  # what DagRun.update_state calls when a run ends
    executor = KubernetesExecutor.__new__(KubernetesExecutor)
    executor.team_name = None
    executor._emit_metrics(open_slots=3, num_running_tasks=29, num_queued_tasks=42)  # every executor heartbeat
    return list(SENT)


def exposed(store: MetricStore, now: float = 0.0) -> dict[tuple[str, frozenset], float]:
    return {(name, frozenset(labels.items())): value
            for family in store.families(now) for name, labels, value in family.samples}


def kinds(store: MetricStore) -> dict[str, str]:
    return {family.name: family.kind for family in store.families(0.0)}


# --- what Airflow 3.3 sends, and what the exporter makes of it ----------------------------

def test_airflow_sends_the_names_the_alerts_are_built_on(airflow_statsd):
    sent = airflow_statsd()
    assert sent == [
        "airflow.scheduler_heartbeat:1|c",
        "airflow.dag_processor_heartbeat:1|c",
        # legacy_names_on (default True): the legacy name with the DAG id ('.' -> '__'), then the new one.
        "airflow.dagrun.duration.failed.etl__orders:90000.000000|ms",
        "airflow.dagrun.duration.failed:90000.000000|ms",
        "airflow.executor.open_slots.KubernetesExecutor:3|g",
        "airflow.executor.open_slots:3|g",
        "airflow.executor.queued_tasks.KubernetesExecutor:42|g",
        "airflow.executor.queued_tasks:42|g",
        "airflow.executor.running_tasks.KubernetesExecutor:29|g",
        "airflow.executor.running_tasks:29|g",
    ]


def test_the_alert_metrics_come_out_with_the_official_charts_names(airflow_statsd):
    store = MetricStore()
    for line in airflow_statsd():
        store.ingest(parse_datagram(line.encode()), now=0.0)
    series = exposed(store)
    assert kinds(store)["airflow_scheduler_heartbeat"] == "counter"
    assert series[("airflow_scheduler_heartbeat", frozenset({("type", "counter")}))] == 1
    assert series[("airflow_dag_processor_heartbeat", frozenset({("type", "counter")}))] == 1
    # A timer: a summary in seconds; its _count is the number of failed runs of the DAG.
    assert kinds(store)["airflow_dagrun_failed"] == "summary"
    assert series[("airflow_dagrun_failed_count", frozenset({("dag_id", "etl__orders")}))] == 1
    assert series[("airflow_dagrun_failed_sum", frozenset({("dag_id", "etl__orders")}))] == 90.0
    assert series[("airflow_dagrun_failed", frozenset({("dag_id", "etl__orders"), ("quantile", "0.99")}))] == 90.0
    # The new, unmapped name: the exporter's default name, no dag_id.
    assert series[("airflow_dagrun_duration_failed_count", frozenset())] == 1
    # One executor: the same gauge with and without the executor label.
    assert kinds(store)["airflow_executor_queued_tasks"] == "gauge"
    assert series[("airflow_executor_queued_tasks", frozenset({("executor", "KubernetesExecutor")}))] == 42
    assert series[("airflow_executor_queued_tasks", frozenset())] == 42


def test_several_executors_send_the_gauge_only_with_the_executor(airflow_statsd, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor,LocalExecutor")
    queued = [line for line in airflow_statsd() if ".queued_tasks" in line]
    assert queued == ["airflow.executor.queued_tasks.KubernetesExecutor:42|g"]
    assert map_name("airflow.executor.queued_tasks.KubernetesExecutor") == (
        "airflow_executor_queued_tasks", {"executor": "KubernetesExecutor"})


def test_without_legacy_names_failed_runs_have_no_dag_id(airflow_statsd, monkeypatch):
    """[metrics] legacy_names_on = False drops the per-DAG name AirflowDagRunFailed counts (a documented limit)."""
    monkeypatch.setenv("AIRFLOW__METRICS__LEGACY_NAMES_ON", "False")
    failed = [line for line in airflow_statsd() if "dagrun.duration.failed" in line]
    assert failed == ["airflow.dagrun.duration.failed:90000.000000|ms"]
    assert map_name("airflow.dagrun.duration.failed") == ("airflow_dagrun_duration_failed", {})


# --- the mapping ---------------------------------------------------------------------------

@pytest.mark.parametrize(("statsd_name", "name", "labels"), [
    ("airflow.scheduler_heartbeat", "airflow_scheduler_heartbeat", {"type": "counter"}),
    ("airflow.dag_processor_heartbeat", "airflow_dag_processor_heartbeat", {"type": "counter"}),
    ("airflow.dagrun.duration.failed.etl__orders", "airflow_dagrun_failed", {"dag_id": "etl__orders"}),
    ("airflow.dagrun.duration.success.etl", "airflow_dagrun_duration", {"dag_id": "etl"}),
    ("airflow.dagrun.schedule_delay.etl", "airflow_dagrun_schedule_delay", {"dag_id": "etl"}),
    ("airflow.dagrun.dependency-check.etl.x", "airflow_dagrun_dependency_check", {"dag_id": "etl"}),
    ("airflow.dag.etl.extract.duration", "airflow_task_duration", {"dag_id": "etl", "task_id": "extract"}),
    ("airflow.executor.queued_tasks.KubernetesExecutor", "airflow_executor_queued_tasks",
     {"executor": "KubernetesExecutor"}),
    ("airflow.executor.open_slots.CeleryExecutor", "airflow_executor_open_slots", {"executor": "CeleryExecutor"}),
    ("airflow.pool.open_slots.default_pool", "airflow_pool_open_slots", {"pool": "default_pool"}),
    ("airflow.ti.queued.default.etl.extract", "airflow_ti_queued",
     {"queue": "default", "dag_id": "etl", "task_id": "extract"}),
    ("airflow.operator_failures_BashOperator", "airflow_operator_failures", {"operator": "BashOperator"}),
    ("airflow.dag_processing.last_runtime.etl", "airflow_dag_processing_last_runtime", {"dag_file": "etl"}),
    # No rule: every character outside [a-zA-Z0-9_] becomes "_".
    ("airflow.executor.queued_tasks", "airflow_executor_queued_tasks", {}),
    ("airflow.ti_failures", "airflow_ti_failures", {}),
    ("airflow.ti.finish.etl.extract.failed", "airflow_ti_finish_etl_extract_failed", {}),
    # A glob's `*` is one whole field: one field too many is no match.
    ("airflow.dagrun.duration.failed.etl.extra", "airflow_dagrun_duration_failed_etl_extra", {}),
    # The chart's regex rules are unanchored, as the exporter (Go's regexp) applies them.
    ("airflow.operator_successes_PythonOperator", "airflow_operator_successes", {"operator": "PythonOperator"}),
    ("xairflow.scheduler_heartbeat", "airflow_scheduler_heartbeat", {"type": "counter"}),
])
def test_official_chart_mapping(statsd_name, name, labels):
    assert map_name(statsd_name) == (name, labels)


def test_first_matching_glob_wins_and_globs_come_before_regexes():
    mapper = Mapper([MappingRule("a.*", "by_regex", {}, regex=True), MappingRule("a.*", "first", {"x": "$1"}),
                     MappingRule("a.b", "second")])
    assert mapper.map("a.b") == ("first", {"x": "b"}, True)
    assert mapper.map("za.bc.d") == ("by_regex", {}, True)
    assert mapper.map("b.c") == ("b_c", {}, False)
    assert len(AIRFLOW_MAPPINGS) == 21  # every rule of the chart's file


@pytest.mark.parametrize(("name", "escaped"), [
    ("airflow.ti-failures", "airflow_ti_failures"), ("1st.metric", "_1st_metric"), ("a--b", "a_b"),
    ("café", "caf_"), ("ok_name", "ok_name"),
])
def test_default_names_are_escaped_as_the_exporter_does(name, escaped):
    assert escape_metric_name(name) == escaped


# --- parsing -------------------------------------------------------------------------------

def test_a_datagram_of_several_lines():
    result = parse_datagram(b"airflow.a:1|c|@0.1\nairflow.g:5|g\nairflow.g:+3|g\nairflow.g:-2|g\n"
                            b"airflow.t:250|ms\nairflow.h:0.5|h\nairflow.s:42|s\n")
    samples = [(s.name, s.kind, s.value, s.relative) for s in result.samples]
    assert samples == [
        ("airflow.a", "counter", 10.0, False),  # sampled at 10 %: counts 10
        ("airflow.g", "gauge", 5.0, False),
        ("airflow.g", "gauge", 3.0, True),  # signed: a change, not a value
        ("airflow.g", "gauge", -2.0, True),
        ("airflow.t", "observer", 0.25, False),  # milliseconds -> seconds
        ("airflow.h", "observer", 0.5, False),  # histograms as sent
    ]
    assert dict(result.errors) == {"illegal_event": 1}  # sets are not supported, as in the exporter


def test_tags_multi_values_and_sampled_timers():
    tagged = parse_line("airflow.ti_failures:1|c|#dag_id:etl,task_id:extract").samples[0]
    assert tagged.labels == {"dag_id": "etl", "task_id": "extract"}
    influx = parse_line("airflow.ti_failures,dag_id=etl:1|c").samples[0]
    assert (influx.name, influx.labels) == ("airflow.ti_failures", {"dag_id": "etl"})
    assert [(s.kind, s.value) for s in parse_line("a:1|c:2|g").samples] == [("counter", 1.0), ("gauge", 2.0)]
    timers = parse_line("t:100:200|ms|@0.5").samples
    assert [(s.value, s.repeat) for s in timers] == [(0.1, 2), (0.2, 2)]


@pytest.mark.parametrize(("line", "reason"), [
    (b"no colon here", "malformed_line"),
    (b":1|c", "malformed_line"),
    (b"\xffname:1|c", "malformed_line"),  # not UTF-8
    (b"a:1", "not_enough_parts_after_colon"),
    (b"a:x|c", "malformed_value"),
    (b"a: 1|c", "malformed_value"),
    (b"a:1_0|c", "malformed_value"),
    (b"a:1|zz", "illegal_event"),
    (b"a:1|c|", "malformed_component"),
    (b"a:1|c|x", "invalid_sample_factor"),
    (b"a:1:2|c", "invalid_extended_aggregate_type"),
    (b"a,tag=v:1|c|#t:v", "mixed_tagging_styles"),
])
def test_bad_lines_are_skipped_and_counted(line, reason):
    result = parse_datagram(line + b"\nairflow.ok:1|c")
    assert dict(result.errors) == {reason: 1}
    assert [s.name for s in result.samples] == ["airflow.ok"]  # the rest of the datagram still counts


# --- aggregation ---------------------------------------------------------------------------

def test_counters_gauges_and_summaries():
    store = MetricStore()
    for line, now in [("airflow.ti_failures:1|c", 0), ("airflow.ti_failures:2|c|@0.5", 1),
                      ("airflow.executor.queued_tasks:7|g", 2), ("airflow.executor.queued_tasks:-2|g", 3),
                      ("airflow.executor.queued_tasks:+10|g", 4)]:
        store.ingest(parse_datagram(line), now)
    for ms in range(1, 101):  # 1 ms .. 100 ms
        store.ingest(parse_datagram(f"airflow.dagrun.duration.success.etl:{ms}|ms"), now=10)
    series = exposed(store, now=20)
    assert series[("airflow_ti_failures", frozenset())] == 5
    assert series[("airflow_executor_queued_tasks", frozenset())] == 15
    etl = frozenset({("dag_id", "etl")})
    assert series[("airflow_dagrun_duration_count", etl)] == 100
    assert series[("airflow_dagrun_duration_sum", etl)] == pytest.approx(5.05)
    assert series[("airflow_dagrun_duration", etl | {("quantile", "0.5")})] == 0.05
    assert series[("airflow_dagrun_duration", etl | {("quantile", "0.9")})] == 0.09
    assert series[("airflow_dagrun_duration", etl | {("quantile", "0.99")})] == 0.099
    # Quantiles cover the last 10 minutes; _sum and _count keep counting.
    later = exposed(store, now=10 + 601)
    assert math.isnan(later[("airflow_dagrun_duration", etl | {("quantile", "0.5")})])
    assert later[("airflow_dagrun_duration_count", etl)] == 100


def test_what_the_exporter_drops():
    store = MetricStore()
    store.ingest(parse_datagram("airflow.x:1|c\nairflow.x:5|g\nairflow.y:-1|c\nairflow.z_count:1|c\nairflow.z:1|ms\n"
                                ",tag=v:1|c"), now=0)
    series = exposed(store)
    assert series[("airflow_x", frozenset())] == 1  # a name keeps the type it first had
    assert ("airflow_y", frozenset()) not in series  # counters never go down
    assert ("airflow_z_count", frozenset()) in series and ("airflow_z_sum", frozenset()) not in series
    assert series[("statsd_exporter_events_conflict_total", frozenset({("type", "gauge")}))] == 1
    assert series[("statsd_exporter_events_conflict_total", frozenset({("type", "observer")}))] == 1
    assert series[("statsd_exporter_events_error_total", frozenset({("reason", "illegal_negative_counter")}))] == 1
    assert series[("statsd_exporter_events_error_total", frozenset({("reason", "empty_metric_name")}))] == 1
    assert not any(name == "" for name, _ in series)


def test_rule_labels_win_over_tags_and_families_are_sorted():
    store = MetricStore()
    store.ingest(parse_datagram("airflow.scheduler_heartbeat:1|c|#type:gauge,host:a\nairflow.b:1|g\nairflow.a:1|g"),
                 now=0)
    assert exposed(store)[("airflow_scheduler_heartbeat", frozenset({("type", "counter"), ("host", "a")}))] == 1
    names = [family.name for family in store.families(0)]
    assert names[:3] == ["airflow_a", "airflow_b", "airflow_scheduler_heartbeat"]
    assert all(name.startswith("statsd_exporter_") for name in names[3:])
