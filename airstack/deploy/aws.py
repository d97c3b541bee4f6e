"""The one place that builds boto3 clients for the deploy.

Every client shares one session (``region``, the usual credential chain: environment,
``AWS_PROFILE``, SSO, instance roles) and botocore's *standard* retry mode with 10 attempts,
so throttling and transient errors are retried with exponential backoff by botocore itself.
``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) is honoured by boto3; ``endpoint_url``
overrides it (tests point it at a moto server).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RETRIES = {"mode": "standard", "max_attempts": 10}


def client_factory(region: str, endpoint_url: str | None = None) -> Callable[[str], Any]:
    """A function ``service name -> boto3 client``; each service's client is built once."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    config = Config(retries=dict(RETRIES), user_agent_extra="airstack")
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=endpoint_url, config=config)
        return clients[service]

    return client
