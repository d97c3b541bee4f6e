"""deploy.yaml's ``airflow.ingress`` as official chart values (pure): the api-server's Ingress, its public URL,
and the proxies whose ``X-Forwarded-*`` headers it believes.

What Airflow 3.3 does with them (read in its source, and run by tests/integration/test_ingress_proxy.py):

- ``airflow api-server --proxy-headers`` puts uvicorn's ProxyHeadersMiddleware in front of the whole app,
  FAB's Flask app under ``/auth`` included. It believes ``X-Forwarded-Proto`` (the scheme FAB's
  ``url_for(..., _external=True)`` builds the OIDC ``redirect_uri`` with, and whether the ``_token``
  cookie is ``Secure``) and ``X-Forwarded-For``, and only from peers in ``FORWARDED_ALLOW_IPS``
  (uvicorn's default there is 127.0.0.1, which is nobody in a pod). Without the flag nothing is believed
  (under ``[api] server_type = gunicorn`` too: Airflow then sets ``forwarded_allow_ips`` to nobody).
- ``X-Forwarded-Host`` is never believed: the host is the request's ``Host`` header, which ingress
  controllers pass on as the client sent it. FAB's own ``[fab] enable_proxy_fix`` (werkzeug's ProxyFix,
  which would believe ``X-Forwarded-Host`` and ``-Prefix``) is kept off: ProxyFix believes any peer.
- ``[api] base_url``: the public URL, where FAB sends a user after login and what Airflow's links use.

A preview gets none of it: it would claim integration's host (an Ingress per preview host is not built).
"""

from __future__ import annotations

import ipaddress
import shlex

from airstack.settings.ingress import Ingress

# The chart's default apiServer.args is ["bash", "-c", "exec airflow api-server"]; the runtime image's
# containers run it through command ["/usr/bin/env"] (charts/airflow/values.yaml).
API_SERVER = ("airflow", "api-server")
PROXY_HEADERS = "--proxy-headers"
TRUSTED_PEERS_VARIABLE = "FORWARDED_ALLOW_IPS"  # the api-server pod's (uvicorn), not a CI variable
# The api-server's NetworkPolicy peer for Airflow's own pods (charts/airflow/values.yaml's first peer): task pods
# and Celery workers reach its Execution API, whatever admits the ingress.
AIRFLOW_PODS = {"podSelector": {"matchLabels": {"tier": "airflow"}}}


def network_policy(ingress: Ingress) -> dict:
    """The api-server's NetworkPolicy sources: Airflow's pods and the trusted proxies' addresses (an ALB with IP
    targets connects from its subnets), or {} to keep the values file's (no proxy named)."""
    if not ingress.trusted_proxies:
        return {}
    peers = [AIRFLOW_PODS, *({"ipBlock": {"cidr": str(ipaddress.ip_network(c, strict=False))}}
                             for c in ingress.trusted_proxies)]
    return {"networkPolicy": {"ingress": {"from": peers}}}


def api_server_args(ingress: Ingress) -> list[str]:
    """The api-server container's args: the chart's, plus ``--proxy-headers`` when some proxy is trusted."""
    argv = [*API_SERVER, *([PROXY_HEADERS] if ingress.trusted_proxies else [])]
    return ["bash", "-c", f"exec {shlex.join(argv)}"]


def chart_values(ingress: Ingress | None, preview: bool = False) -> dict:
    """The official chart's values for ``ingress`` (none without one, or for a preview)."""
    if ingress is None or preview:
        return {}
    host = {"name": ingress.host}
    if ingress.tls.secret:
        host["tls"] = {"enabled": True, "secretName": ingress.tls.secret}
    api_ingress = {"enabled": True, "hosts": [host], "path": "/", "pathType": "Prefix",
                   "annotations": dict(ingress.annotations)}
    if ingress.class_name:
        api_ingress["ingressClassName"] = ingress.class_name
    api_server: dict = {"args": api_server_args(ingress), **network_policy(ingress)}
    if ingress.trusted_proxies:
        api_server["env"] = [{"name": TRUSTED_PEERS_VARIABLE, "value": ",".join(ingress.trusted_proxies)}]
    return {
        "ingress": {"apiServer": api_ingress},
        "apiServer": api_server,
        "config": {"api": {"base_url": ingress.url}, "fab": {"enable_proxy_fix": "False"}},
    }


def problems(file: str, ingress: Ingress | None, oidc: bool) -> list[str]:
    """What will not work as configured (warnings, one line each): an OIDC login behind an ingress whose
    proxies are not trusted builds an http callback, which the IdP refuses."""
    if ingress is not None and oidc and not ingress.trusted_proxies:
        return [f"{file}: airflow.ingress.trusted_proxies: empty, so the api-server believes no X-Forwarded-Proto "
                "and OIDC's callback is http://, which the IdP refuses: name the ingress controller's addresses"]
    return []
