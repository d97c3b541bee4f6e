"""charts/platform/files/alerts.yaml read as data (no promtool: tests/integration/test_promtool.py runs that).

Every rule is complete, every metric an expression names is one the official chart's statsd-exporter makes of
what Airflow 3.3 really sends (tests/unit/test_statsd.py's emit_alert_metrics), and alerts.test.yaml tests
every alert both firing and quiet.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from airstack.metrics.statsd import MetricStore, parse_datagram
from tests.unit.test_statsd import airflow_statsd  # noqa: F401 - the fixture, shared

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/",)

FILES = Path(__file__).resolve().parents[2] / "charts" / "platform" / "files"
RULES = yaml.safe_load((FILES / "alerts.yaml").read_text())
RULE_TESTS = yaml.safe_load((FILES / "alerts.test.yaml").read_text())
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"] if "alert" in rule]

# PromQL words that look like names: operators, keywords and modifiers (functions are followed by "(").
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (enough PromQL for these rules; promtool checks the rest)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    words = re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", expr)
    return {word for word in words if word.lower() not in _KEYWORDS}


def test_the_extractor_finds_metrics_not_functions_or_labels():
    expr = ('absent(up{job="x"}) or rate(a_total[5m] offset 1h) == 0 and on() max without (executor) '
            '(b) > 10 unless sum by (dag_id) (c_count)')
    assert metric_names(expr) == {"up", "a_total", "b", "c_count"}


def grouping_labels(expr: str) -> set[str]:
    """The labels of ``by (...)`` and ``without (...)``."""
    return {label.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
            for label in group.split(",") if label.strip()}


def _series(lines: list[str]) -> dict[str, set[str]]:
    """{metric name: label names} the exporter exposes for these StatsD lines."""
    store = MetricStore()
    for line in lines:
        store.ingest(parse_datagram(line), now=0.0)
    found: dict[str, set[str]] = {}
    for family in store.families(0.0):
        for name, labels, _ in family.samples:
            found.setdefault(name, set()).update(labels)
    return found


def test_rules_are_complete():
    assert RULES["groups"] and ALERTS
    names = [rule["alert"] for rule in ALERTS]
    assert len(names) == len(set(names)), names
    for rule in ALERTS:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip() and rule["annotations"]["description"].strip(), rule["alert"]
    # The three the issue asks for: a missing scheduler heartbeat, failed DAG runs, a queue backing up.
    assert {"AirflowSchedulerHeartbeatMissing", "AirflowDagRunFailed", "AirflowTaskQueueBackingUp"} <= set(names)


def test_every_metric_is_one_the_exporter_makes_of_airflows_metrics(airflow_statsd):  # noqa: F811
    series = _series(airflow_statsd())
    for rule in ALERTS:
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= set(series), f"{rule['alert']}: {sorted(used - set(series))} are not made from Airflow's metrics"
        # Labels the annotations and the expression name must be on those series.
        labels = set(re.findall(r"\$labels\.(\w+)", " ".join(rule["annotations"].values())))
        labels |= grouping_labels(rule["expr"])
        available = set().union(*(series[name] for name in used))
        assert labels <= available, f"{rule['alert']}: labels {sorted(labels - available)} are not on {sorted(used)}"


def test_promtool_tests_cover_every_alert_firing_and_quiet():
    assert RULE_TESTS["rule_files"] == ["alerts.yaml"]
    firing, quiet = set(), set()
    for case in RULE_TESTS["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in ALERTS}
    assert firing == names, f"never seen firing: {sorted(names - firing)}"
    assert quiet == names, f"never seen quiet: {sorted(names - quiet)}"


def test_promtool_tests_feed_the_metrics_the_rules_use():
    used = set().union(*(metric_names(rule["expr"]) for rule in ALERTS))
    fed = {re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", series["series"]).group()
           for case in RULE_TESTS["tests"] for series in case["input_series"]}
    assert fed == used
