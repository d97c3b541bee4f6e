"""Prometheus's own promtool on the alert rules and on the bridge's exposition.

promtool comes with Debian's `prometheus` package (`apt-get install --no-install-recommends prometheus`);
where it is not on PATH these tests skip, saying so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from airstack import proc

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/",)

FILES = Path(__file__).resolve().parents[2] / "charts" / "platform" / "files"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not on PATH (Debian: apt-get install --no-install-recommends prometheus)")


def promtool(*args: str, cwd: Path = FILES, input: bytes | None = None) -> proc.Result:
    return proc.run([PROMTOOL, *args], cwd=cwd, input=input, check=False, timeout=120)


def test_rules_check():
    result = promtool("check", "rules", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in yaml.safe_load((FILES / "alerts.yaml").read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_rule_unit_tests_pass():
    result = promtool("test", "rules", "alerts.test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("change", "alert"), [
    (("> 10", "> 30"), "AirflowTaskQueueBackingUp"),
    (("absent(airflow_scheduler_heartbeat) or ", ""), "AirflowSchedulerHeartbeatMissing"),
    (("\n            and on() (airflow_scheduler_heartbeat offset 15m)", ""), "AirflowDagRunFailed"),
])
def test_rule_unit_tests_catch_a_broken_rule(tmp_path, change, alert):
    """The unit tests are not vacuous: break one rule and promtool names the alert that no longer behaves."""
    old, new = change
    rules = (FILES / "alerts.yaml").read_text()
    assert old in rules
    (tmp_path / "alerts.yaml").write_text(rules.replace(old, new, 1))
    shutil.copy(FILES / "alerts.test.yaml", tmp_path)
    result = promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}" in result.stdout + result.stderr


def test_bridge_exposition_parses_as_prometheus_text():
    """promtool reads what the bridge serves; its only remarks are the ones the real exporter's output gets too
    (counters named as StatsD sent them, without _total)."""
    from airstack.metrics.bridge import Bridge, render

    bridge = Bridge(statsd_port=0, http_port=0)
    bridge.start()
    try:
        bridge.apply(b"airflow.scheduler_heartbeat:1|c\nairflow.dagrun.duration.failed.etl:1500|ms\n"
                     b"airflow.executor.queued_tasks.KubernetesExecutor:4|g\nairflow.ti_failures:1|c|#dag_id:a\"b\n"
                     b"bad line")
        text = render(bridge.registry)
    finally:
        bridge.stop()
    result = promtool("check", "metrics", input=text)
    remarks = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode in (0, 3), remarks  # 3: lint remarks only; a parse error is 1
    assert remarks and all(remark.endswith('counter metrics should have "_total" suffix') for remark in remarks)
    assert {remark.split()[0] for remark in remarks} == {"airflow_scheduler_heartbeat", "airflow_ti_failures"}
