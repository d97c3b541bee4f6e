"""deploy.yaml's ``airflow.ingress``: the api-server behind a TLS-terminating Ingress, and whom it trusts.

::

    airflow:
      ingress:
        url: https://airflow.example.com     # the public URL: the Ingress's host, [api] base_url, OIDC's callback
        class_name: alb                      # optional: the Ingress's ingressClassName
        annotations: {}                      # optional: the controller's (cert-manager, ALB...)
        tls:
          secret: airflow-tls                # a kubernetes.io/tls Secret the controller serves; or
          # managed: true                    # the controller or load balancer holds the certificate (ACM)
        trusted_proxies: [10.20.0.0/20]      # addresses whose X-Forwarded-Proto/-For the api-server believes

The safe default: no ``trusted_proxies``, so no forwarded header is believed from anyone, and the
api-server sees plain http (an OIDC login behind TLS then fails: the IdP refuses an http callback).
Name the ingress controller's (or load balancer's) addresses only: whoever else can reach the pods
could claim any scheme and any client address. ``*`` and ``/0`` networks are refused for that reason.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$")
SecretName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tls(_Model):
    secret: SecretName | None = None
    managed: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Tls:
        if bool(self.secret) == self.managed:
            raise ValueError("name the certificate's Secret (secret: NAME) or say the controller holds it "
                             "(managed: true), one of the two")
        return self


def check_url(value: str) -> str:
    """``https://host[:port]``: a DNS name, no path (the chart's probes and paths assume the root)."""
    parts = urlsplit(value)
    if parts.scheme != "https":
        raise ValueError(f"{value!r}: the public URL is https:// (TLS ends at the ingress)")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"{value!r}: the port is not a number") from None
    if not parts.hostname or not HOSTNAME.match(parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc):
        raise ValueError(f"{value!r}: not https://HOST[:PORT] with HOST a lowercase DNS name")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value!r}: no path, query or fragment (Airflow is served at the host's root)")
    return value.rstrip("/")


def check_proxy(value: str) -> str:
    """An IP address or network (``10.0.0.0/16``), never everyone."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address or network ({exc})") from None
    if network.prefixlen == 0:
        raise ValueError(f"{value!r} trusts every address: name the ingress controller's addresses")
    return value


class Ingress(_Model):
    url: Annotated[str, AfterValidator(check_url)]
    class_name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")] | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    tls: Tls
    trusted_proxies: list[Annotated[str, AfterValidator(check_proxy)]] = Field(default_factory=list)

    def __hash__(self) -> int:  # frozen, and hashable like the rest of deploy.yaml's options (lists and dicts aside)
        return hash((self.url, self.class_name, tuple(sorted(self.annotations.items())), self.tls,
                     tuple(self.trusted_proxies)))

    @property
    def host(self) -> str:
        """The URL's host name (the Ingress rule's; without the port)."""
        return urlsplit(self.url).hostname or ""
