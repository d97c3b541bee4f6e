"""Airflow's StatsD metrics as Prometheus sees them.

On Kubernetes the official apache-airflow chart runs prom/statsd-exporter with its mapping
file; here, where that binary and its image cannot be had, ``python -m airstack.metrics.bridge``
stands in for it. ``statsd`` holds the pure logic (parsing, the exporter's aggregation),
``mapping`` the chart's mapping rules; ``bridge`` holds the sockets and the HTTP endpoint.
"""
