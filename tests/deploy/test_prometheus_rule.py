"""charts/platform's PrometheusRule, rendered by the real Helm engine (helm-python-sdk).

With metrics.prometheusRules.enabled it carries exactly the groups of files/alerts.yaml, with the labels the
prometheus-operator's ruleSelector needs; without it (the default) the chart renders what it rendered before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest
import yaml

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/",)

PLATFORM = Path(__file__).resolve().parents[2] / "charts" / "platform"
NAMESPACE = "airflow"


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(PLATFORM) as loaded:
        yield loaded


def base_values(env: str = "integration") -> dict:
    """The environment's values plus the runtime image the deploy passes (the DAG sync Job needs one)."""
    values = yaml.safe_load((PLATFORM / f"values-{env}.yaml").read_text()) or {}
    return values


def with_rules(values: dict, **prometheus_rules) -> dict:
    values = copy.deepcopy(values)
    values["metrics"] = {"prometheusRules": prometheus_rules}
    return values


def render(chart: helm_python.Chart, values: dict) -> list[dict]:
    rendered = chart.render(values=values, name="platform", namespace=NAMESPACE, is_install=True)
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def rules_of(objects: list[dict]) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == "PrometheusRule"]


@pytest.mark.parametrize("env", ["integration", "production"])
def test_enabled_the_rule_carries_the_groups_of_the_file(chart, env):
    values = with_rules(base_values(env), enabled=True, labels={"release": "kube-prometheus-stack"})
    (rule,) = rules_of(render(chart, values))
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == "airflow-alerts"
    assert rule["spec"]["groups"] == yaml.safe_load((PLATFORM / "files" / "alerts.yaml").read_text())["groups"]
    # Prometheus's templates reach Prometheus untouched (Helm does not template the file).
    summaries = [r["annotations"]["summary"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert "DAG {{ $labels.dag_id }}: a run failed in the last 15 minutes" in summaries
    labels = rule["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack"  # for the operator's ruleSelector
    assert labels["app.kubernetes.io/part-of"] == "airstack" and labels["app.kubernetes.io/managed-by"] == "Helm"
    assert labels["app.kubernetes.io/component"] == "metrics"


def test_the_rule_is_named_after_the_airflow_release(chart):
    values = with_rules(base_values(), enabled=True)
    values["airflowRelease"] = "af-prod"
    (rule,) = rules_of(render(chart, values))
    assert rule["metadata"]["name"] == "af-prod-alerts"


def test_the_charts_own_labels_win(chart):
    values = with_rules(base_values(), enabled=True, labels={"app.kubernetes.io/part-of": "other", "team": "data"})
    (rule,) = rules_of(render(chart, values))
    assert rule["metadata"]["labels"]["app.kubernetes.io/part-of"] == "airstack"
    assert rule["metadata"]["labels"]["team"] == "data"


def test_disabled_by_default_and_nothing_else_changes(chart):
    default = render(chart, base_values())
    assert rules_of(default) == []
    assert {obj["kind"] for obj in default} == {"PersistentVolumeClaim", "NetworkPolicy"}
    enabled = render(chart, with_rules(base_values(), enabled=True))
    assert [obj for obj in enabled if obj["kind"] != "PrometheusRule"] == default
    assert render(chart, with_rules(base_values(), enabled=False)) == default


@pytest.mark.parametrize("prometheus_rules", [
    {"enabled": "yes"},
    {"enabled": True, "labels": {"release": 1}},
    {"enabled": True, "selector": {}},
    {"enabled": True, "labels": ["release=kube-prometheus-stack"]},
])
def test_the_schema_refuses_bad_values(chart, prometheus_rules):
    values = base_values()
    values["metrics"] = {"prometheusRules": prometheus_rules}
    with pytest.raises(helm_python.HelmValuesError, match="prometheusRules"):
        chart.validate_schema(values)


def test_lints_clean_when_enabled():
    report = helm_python.lint(PLATFORM, values=with_rules(base_values(), enabled=True), namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert report["errors"] == [] and problems == [], report
