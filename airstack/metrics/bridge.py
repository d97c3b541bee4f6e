"""A local stand-in for prom/statsd-exporter: StatsD in over UDP, Prometheus text out over HTTP.

    python -m airstack.metrics.bridge [--host 127.0.0.1] [--statsd-port 8125] [--http-port 9102]

On Kubernetes the official chart runs the real exporter with its mapping file; here neither the
binary nor its image can be had, so this process plays it for what the alerts use: the same
parsing, mapping and aggregation (:mod:`airstack.metrics.statsd`), exposed at
``http://HOST:HTTP_PORT/metrics`` from a ``prometheus_client`` registry. It binds to loopback
only (any other ``--host`` is refused, exit 2); port 0 picks a free port, and the line printed at
start says which. SIGTERM and SIGINT stop it cleanly (exit 0). Not played: the exporter's TCP
listener, unixgram socket, relay, mapping-file reload and its Go/process metrics.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from airstack.cli import run_main
from airstack.errors import AirstackError
from airstack.metrics.statsd import MetricStore, parse_datagram

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what the exporter's promhttp handler serves
MAX_DATAGRAM = 65535
INDEX = (b"<html><head><title>StatsD Exporter (airstack stand-in)</title></head><body>"
         b"<h1>StatsD Exporter (airstack stand-in)</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>")


class MetricsBridgeError(AirstackError):
    """The bridge cannot listen where it was asked to."""


# --- Prometheus side: the store as a prometheus_client collector, written as the exporter writes it ---

class StoreCollector(Collector):
    """Yields the store's families as prometheus_client metrics; ``lock`` guards the store."""

    def __init__(self, store: MetricStore, lock: threading.Lock, clock: Callable[[], float] = time.monotonic) -> None:
        self._store, self._lock, self._clock = store, lock, clock

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._store.families(self._clock())
        for family in families:
            metric = Metric(family.name, family.help, family.kind)
            metric.name = family.name  # prometheus_client drops a counter's "_total"; the exporter keeps names as sent
            metric.samples = [Sample(name, labels, value) for name, labels, value in family.samples]
            yield metric


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render(registry: CollectorRegistry) -> bytes:
    """The text format (0.0.4) the exporter serves: counters keep their names, no ``_total`` added.

    (prometheus_client's own ``generate_latest`` would name every counter ``<name>_total``, unlike
    the exporter: ``airflow_scheduler_heartbeat`` must stay ``airflow_scheduler_heartbeat``.)
    """
    lines = []
    for metric in registry.collect():
        help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        lines += [f"# HELP {metric.name} {help_text}", f"# TYPE {metric.name} {metric.type}"]
        for sample in metric.samples:
            labels = ",".join(f'{key}="{_label_value(value)}"' for key, value in sample.labels.items())
            lines.append(f"{sample.name}{{{labels}}} {floatToGoString(sample.value)}" if labels
                         else f"{sample.name} {floatToGoString(sample.value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""


# --- the sockets ----------------------------------------------------------------------------

def loopback_family(host: str) -> socket.AddressFamily:
    """The address family of a loopback ``host``; a :class:`ValueError` for anything else."""
    if host == "localhost":
        return socket.AF_INET
    address = ipaddress.ip_address(host)  # ValueError for a name
    if not address.is_loopback:
        raise ValueError(host)
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


class Bridge:
    """The UDP listener and the HTTP server around one :class:`MetricStore`."""

    def __init__(self, host: str = "127.0.0.1", statsd_port: int = 8125, http_port: int = 9102,
                 store: MetricStore | None = None) -> None:
        self.host = "127.0.0.1" if host == "localhost" else host
        self._family = loopback_family(self.host)
        self._ports = (statsd_port, http_port)
        self.store = store or MetricStore()
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(self.store, self._lock))
        self._udp: socket.socket | None = None
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def statsd_port(self) -> int:
        return self._udp.getsockname()[1]

    @property
    def http_port(self) -> int:
        return self._http.server_address[1]

    def start(self) -> None:
        """Bind both sockets (or raise :class:`MetricsBridgeError`) and serve in background threads."""
        statsd_port, http_port = self._ports
        udp = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            udp.bind((self.host, statsd_port))
        except OSError as exc:
            udp.close()
            raise MetricsBridgeError(
                f"cannot receive StatsD on {self.host}:{statsd_port}/udp: {exc.strerror}") from None
        udp.settimeout(0.5)  # so that the receive loop sees stop()
        server_class = type("BridgeHTTPServer", (ThreadingHTTPServer,),
                            {"address_family": self._family, "daemon_threads": True})
        try:
            self._http = server_class((self.host, http_port), _handler(self.registry))
        except OSError as exc:
            udp.close()
            raise MetricsBridgeError(f"cannot serve metrics on {self.host}:{http_port}/tcp: {exc.strerror}") from None
        self._udp = udp
        self._threads = [threading.Thread(target=self._receive, name="statsd-udp", daemon=True),
                         threading.Thread(target=self._http.serve_forever, name="metrics-http", daemon=True)]
        for thread in self._threads:
            thread.start()

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._udp.recv(MAX_DATAGRAM)
            except socket.timeout:
                continue
            except OSError:
                break  # closed by stop()
            self.apply(data)

    def apply(self, data: bytes) -> None:
        """One datagram into the store (what the UDP thread does with each packet)."""
        result = parse_datagram(data)
        with self._lock:
            self.store.ingest(result, time.monotonic())

    def stop(self) -> None:
        self._stopping.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._udp is not None:
            self._udp.close()


def _handler(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, CONTENT_TYPE, render(registry))
            elif path == "/":
                self._reply(200, "text/html; charset=utf-8", INDEX)
            else:
                self._reply(404, "text/plain; charset=utf-8", b"404 page not found\n")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
            log.debug("http: " + format, *args)

    return Handler


# --- command line ---------------------------------------------------------------------------

def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0-65535; 0 picks a free one)")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airstack.metrics.bridge",
        description="A local stand-in for prom/statsd-exporter: StatsD in over UDP, Prometheus text out over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--statsd-port", type=_port, default=8125, help="UDP port for StatsD (default 8125)")
    parser.add_argument("--http-port", type=_port, default=9102, help="TCP port for /metrics (default 9102)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        loopback_family(args.host)
    except ValueError:
        print(f"error: --host {args.host} is not a loopback address: the bridge listens on loopback only "
              "(127.0.0.1, ::1 or localhost)", file=sys.stderr)
        return 2
    bridge = Bridge(args.host, args.statsd_port, args.http_port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    bridge.start()
    host = f"[{bridge.host}]" if ":" in bridge.host else bridge.host
    print(f"statsd-exporter stand-in: StatsD on udp://{host}:{bridge.statsd_port}, "
          f"metrics on http://{host}:{bridge.http_port}/metrics", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        bridge.stop()
    print("statsd-exporter stand-in: stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
