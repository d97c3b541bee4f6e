"""`python -m airstack.metrics.bridge`, the statsd-exporter stand-in, as a real process.

Metrics go in over real UDP from the `statsd` client library Airflow itself uses (prefix `airflow`, as
Airflow's [metrics] statsd_prefix), and come out of a real HTTP scrape of /metrics.
"""

from __future__ import annotations

import re
import signal
import socket
import sys
from types import SimpleNamespace

import httpx
import psutil
import pytest
import statsd
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from airstack import proc
from airstack.postgres.embedded import free_port
from tests.helpers import server

BRIDGE = [sys.executable, "-m", "airstack.metrics.bridge"]
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> tuple[dict[tuple[str, frozenset], float], dict[str, str]]:
    """(series -> value, metric name -> TYPE) of one scrape, read as Prometheus reads the text format."""
    response = httpx.get(f"{url}/metrics", timeout=5)
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    series, types = {}, {}
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        elif line and not line.startswith("#"):
            name, labels, value = _SAMPLE.match(line).groups()
            pairs = frozenset(re.findall(r'(\w+)="((?:\\.|[^"\\])*)"', labels or ""))
            series[(name, pairs)] = float(value)
    return series, types


@pytest.fixture
def bridge(tmp_path):
    statsd_port, http_port = free_udp_port(), free_port()
    log_file = tmp_path / "bridge.log"
    url = f"http://127.0.0.1:{http_port}"
    with server([*BRIDGE, "--statsd-port", statsd_port, "--http-port", http_port], log_file, f"{url}/metrics",
                30) as process:
        yield SimpleNamespace(process=process, url=url, statsd_port=statsd_port, http_port=http_port,
                              log_file=log_file)


def eventually(check, timeout: float = 10):
    """UDP arrives when it arrives: retry a scrape-and-assert until it holds."""
    retry(retry=retry_if_exception_type(AssertionError), stop=stop_after_delay(timeout), wait=wait_fixed(0.1),
          reraise=True)(check)()


def test_airflow_metrics_come_out_as_the_official_exporter_names_them(bridge):
    client = statsd.StatsClient("127.0.0.1", bridge.statsd_port, prefix="airflow")
    for _ in range(3):
        client.incr("scheduler_heartbeat", 1, 1)  # what SchedulerJobRunner.heartbeat_callback sends
    client.timing("dagrun.duration.failed.etl_orders", 90000)  # a failed run of 90 s, legacy name
    client.timing("dagrun.duration.failed.etl_orders", 30000)
    client.gauge("executor.queued_tasks.KubernetesExecutor", 42)
    client.gauge("executor.queued_tasks", 42)
    client.gauge("executor.queued_tasks", -2, delta=True)
    with client.pipeline() as pipe:  # several lines in one datagram
        pipe.incr("ti_failures")
        pipe.incr("ti_failures")

    def check():
        series, types = scrape(bridge.url)
        assert series[("airflow_scheduler_heartbeat", frozenset({("type", "counter")}))] == 3
        assert types["airflow_scheduler_heartbeat"] == "counter"  # named as sent: no _total added
        etl = frozenset({("dag_id", "etl_orders")})
        assert types["airflow_dagrun_failed"] == "summary"
        assert series[("airflow_dagrun_failed_count", etl)] == 2
        assert series[("airflow_dagrun_failed_sum", etl)] == 120.0  # seconds
        assert series[("airflow_dagrun_failed", etl | {("quantile", "0.5")})] == 30.0
        assert series[("airflow_dagrun_failed", etl | {("quantile", "0.99")})] == 90.0
        assert series[("airflow_executor_queued_tasks", frozenset({("executor", "KubernetesExecutor")}))] == 42
        assert series[("airflow_executor_queued_tasks", frozenset())] == 40
        assert types["airflow_executor_queued_tasks"] == "gauge"
        assert series[("airflow_ti_failures", frozenset())] == 2

    eventually(check)


def test_airflows_own_code_over_udp_gives_the_alerts_their_series(bridge, monkeypatch):
    """Airflow 3.3's scheduler, DAG processor, DagRun and executor code, configured by [metrics] to send to the
    bridge: the series the alerts (charts/platform/files/alerts.yaml) read are there."""
    from airflow._shared.observability.metrics import stats
    from airflow.executors import executor_loader
    from airflow.sdk._shared.observability.metrics import stats as sdk_stats

    from tests.unit.test_statsd import emit_alert_metrics

    for module in (stats, sdk_stats):  # restored afterwards
        for name in ("_factory", "_backend", "_export_legacy_names"):
            monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.setattr(executor_loader, "_executor_names", [])
    for key, value in {"STATSD_ON": "True", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(bridge.statsd_port),
                       "STATSD_PREFIX": "airflow"}.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
    monkeypatch.delenv("AIRFLOW__METRICS__STATSD_CUSTOM_CLIENT_PATH", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor")
    emit_alert_metrics()

    def check():
        series, _ = scrape(bridge.url)
        assert series[("airflow_scheduler_heartbeat", frozenset({("type", "counter")}))] == 1
        assert series[("airflow_dag_processor_heartbeat", frozenset({("type", "counter")}))] == 1
        assert series[("airflow_dagrun_failed_count", frozenset({("dag_id", "etl__orders")}))] == 1
        assert series[("airflow_executor_queued_tasks", frozenset({("executor", "KubernetesExecutor")}))] == 42

    eventually(check)


def test_bad_lines_are_dropped_the_rest_of_the_datagram_counts(bridge):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"garbage\nairflow.ti_failures:1|c|@0.5\nairflow.ti_successes:abc|c\n"
                    b"airflow.dag_processor_heartbeat:1|c|#team:a\n\xff\xfe:1|c", ("127.0.0.1", bridge.statsd_port))

    def check():
        series, _ = scrape(bridge.url)
        assert series[("airflow_ti_failures", frozenset())] == 2  # sampled at 50 %
        assert series[("airflow_dag_processor_heartbeat", frozenset({("type", "counter"), ("team", "a")}))] == 1
        assert not any(name.startswith(("garbage", "airflow_ti_successes")) for name, _ in series)
        errors = {dict(labels)["reason"]: value for (name, labels), value in series.items()
                  if name == "statsd_exporter_sample_errors_total"}
        assert errors == {"malformed_line": 2, "malformed_value": 1}

    eventually(check)
    assert bridge.process.poll() is None


def test_listens_on_loopback_only(bridge):
    first_line = bridge.log_file.read_text().splitlines()[0]
    assert first_line == (f"statsd-exporter stand-in: StatsD on udp://127.0.0.1:{bridge.statsd_port}, "
                          f"metrics on http://127.0.0.1:{bridge.http_port}/metrics")
    sockets = psutil.Process(bridge.process.pid).net_connections(kind="inet")
    bound = {(s.type, s.laddr.ip, s.laddr.port) for s in sockets if s.laddr}
    assert (socket.SOCK_DGRAM, "127.0.0.1", bridge.statsd_port) in bound
    assert (socket.SOCK_STREAM, "127.0.0.1", bridge.http_port) in bound
    assert {ip for _, ip, _ in bound} == {"127.0.0.1"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_refuses_any_other_host_with_one_line(host):
    result = proc.run([*BRIDGE, "--host", host, "--statsd-port", "0", "--http-port", "0"], check=False, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --host {host} is not a loopback address: the bridge listens on loopback only "
        "(127.0.0.1, ::1 or localhost)"]
    assert result.stdout == ""


def test_a_taken_port_is_one_error_line():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = proc.run([*BRIDGE, "--statsd-port", port, "--http-port", "0"], check=False, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: cannot receive StatsD on 127.0.0.1:{port}/udp: "
                                                  "Address already in use"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_a_signal(bridge, signum):
    bridge.process.send_signal(signum)
    assert bridge.process.wait(timeout=10) == 0
    assert bridge.log_file.read_text().splitlines()[-1] == "statsd-exporter stand-in: stopped"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{bridge.url}/metrics", timeout=2)
