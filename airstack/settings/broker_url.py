"""What a deployed Celery broker URL must be: Redis over TLS, with the broker's AUTH token, the server verified.

ElastiCache (infra/cloudformation/broker.yaml) takes connections over TLS only and asks for its AUTH token
(generated into the stack's BrokerAuthSecret), so settings' ``airflow.celery_broker_url`` is
``rediss://:<token>@<BrokerEndpointAddress>:6379/0?ssl_cert_reqs=required``. Celery (kombu's Redis transport)
reads the token from the URL's password and the TLS options from its query. The checks are pure, and never
repeat the URL: it is a secret. tests/integration/test_broker_tls.py connects Celery through such a URL to a
real redis-server with TLS and a password.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

SCHEME = "rediss"
VERIFIED = {"required", "CERT_REQUIRED"}  # kombu takes either spelling


def problems(url: str) -> list[str]:
    """Why ``url`` is not a TLS, authenticated, verified broker URL (empty: it is)."""
    parts = urlsplit(url)
    found = []
    if parts.scheme != SCHEME:
        found.append(f"must use {SCHEME}:// (TLS), not {parts.scheme or 'no scheme'}://")
    if not parts.password:
        found.append("must carry the broker's AUTH token as its password (rediss://:<token>@host:6379/0)")
    reqs = parse_qs(parts.query).get("ssl_cert_reqs", [])
    if reqs and not VERIFIED.intersection(reqs):
        found.append("ssl_cert_reqs must be required (the broker's certificate is verified)")
    return found
