"""FAB's OIDC login (charts/platform/files/webserver_config.py) for real: the file imported under the FAB
provider of the lock, then a real Airflow 3.3 api-server with FAB and that file on 127.0.0.1, against a
real OpenID Connect provider on 127.0.0.1 (oidc-provider-mock: authlib's authorization server with a
form standing in for the IdP's login page) and a real Postgres. The browser is httpx, step by step.

Stands in: the IdP (any user the test names logs in; a real one checks passwords, MFA...).
"""

from __future__ import annotations

import contextlib
import json
import runpy
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import pytest
import werkzeug.serving

from airstack.deploy.chart_values import OIDC_CONFIG
from airstack.postgres.embedded import free_port
from airstack.settings.schema import parse_settings
from tests.helpers import server
from tests.integration.test_fab_auth import AIRFLOW, ROOT, make_fab_env, settings_with_users, sync_users, token, user

PROVIDER = "sso"
GROUPS = {"alice": ["airflow-admins"], "victor": ["readers"], "mallory": ["strangers"]}


def oidc_env(metadata_url: str, client_secret: str, default_role: str | None = None) -> dict[str, str]:
    """What the api-server pods get: AIRSTACK_OIDC (settings' readable part), the secret from its Secret."""
    settings = parse_settings({"airflow": {"auth": {"oidc": {
        "provider": PROVIDER, "client_id": "airflow-test", "client_secret": client_secret,
        "server_metadata_url": metadata_url, "role_mapping": {"airflow-admins": "Admin", "readers": "Viewer"},
        "default_role": default_role}}}}, "settings/integration/secret.yaml")
    oidc = settings.airflow.auth.oidc
    return {"AIRSTACK_OIDC": json.dumps(oidc.public()), "AIRSTACK_OIDC_CLIENT_SECRET": oidc.client_secret}


def test_the_config_gives_fab_the_provider_and_the_role_mapping(monkeypatch):
    client_secret = secrets.token_urlsafe(24)
    for name, value in oidc_env("https://idp.example.com/.well-known/openid-configuration", client_secret,
                                default_role="Viewer").items():
        monkeypatch.setenv(name, value)
    config = runpy.run_path(str(ROOT / OIDC_CONFIG))
    from flask_appbuilder.const import AUTH_OAUTH
    assert config["AUTH_TYPE"] == AUTH_OAUTH
    (provider,) = config["OAUTH_PROVIDERS"]
    assert provider["name"] == PROVIDER
    assert provider["remote_app"] == {
        "client_id": "airflow-test", "client_secret": client_secret,
        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
        "client_kwargs": {"scope": "openid email profile"}}
    assert config["AUTH_ROLES_MAPPING"] == {"airflow-admins": ["Admin"], "readers": ["Viewer"]}
    assert config["AUTH_ROLES_SYNC_AT_LOGIN"] is True and config["AUTH_USER_REGISTRATION"] is True
    assert config["AUTH_USER_REGISTRATION_ROLE"] == "Viewer"
    info = config["user_info"]({"preferred_username": "alice", "email": "a@x.invalid", "groups": "airflow-admins"})
    assert info["username"] == "sso:alice" and info["role_keys"] == ["airflow-admins"]


@contextlib.contextmanager
def serve_idp(groups: dict[str, list[str]] = GROUPS, **options) -> Iterator[str]:
    """oidc-provider-mock's app on 127.0.0.1 (its own run_server_in_thread binds localhost), knowing ``groups``'
    users; ``options`` go to its app (``require_client_registration=True``: an unregistered redirect URI is
    refused). Yields its base URL."""
    users = [oidc_provider_mock.User(sub=name, claims={"preferred_username": name, "email": f"{name}@example.invalid",
                                                       "groups": listed}) for name, listed in groups.items()]
    app = oidc_provider_mock.app(user_claims=users, **options)
    httpd = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(5)


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    with serve_idp() as url:
        yield url


@pytest.fixture(scope="module")
def oidc_api(postgres, tmp_path_factory, idp) -> Iterator[tuple[str, dict[str, str], Path]]:
    env = {**make_fab_env(postgres.dsn, tmp_path_factory.mktemp("fab-oidc-home"), "fab_oidc"),
           **oidc_env(f"{idp}/.well-known/openid-configuration", secrets.token_urlsafe(24)),
           "AIRFLOW__FAB__CONFIG_FILE": str(ROOT / OIDC_CONFIG)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = tmp_path_factory.mktemp("fab-oidc-api") / "api-server.log"
    with server([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)], log_file,
                f"{url}/api/v2/monitor/health", 120, env=env):
        yield url, env, log_file


def oidc_login(api: str, who: str) -> tuple[httpx.Response, httpx.Client]:
    """FAB's login for the provider, the IdP's form (a separate client: both set cookies on 127.0.0.1),
    the callback; returns the callback's answer and the browser holding its cookies."""
    browser = httpx.Client(base_url=api, timeout=60)
    start = browser.get(f"/auth/login/{PROVIDER}")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    idp_answer = httpx.post(authorize, data={"sub": who}, timeout=60)
    assert idp_answer.status_code == 302, idp_answer.text
    return browser.get(idp_answer.headers["location"]), browser


def test_anonymous_calls_are_refused_and_login_goes_to_the_provider(oidc_api, idp):
    api, _, _ = oidc_api
    anonymous = httpx.get(f"{api}/api/v2/dags", timeout=30)
    assert anonymous.status_code in (401, 403), anonymous.text
    start = httpx.get(f"{api}/auth/login/{PROVIDER}", timeout=60)
    assert start.status_code == 302, start.text
    endpoint = httpx.get(f"{idp}/.well-known/openid-configuration", timeout=30).json()["authorization_endpoint"]
    location = start.headers["location"]
    assert location.startswith(endpoint + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == ["airflow-test"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"{api}/auth/oauth-authorized/{PROVIDER}"]
    assert "client_secret" not in query and set(query["scope"][0].split()) == {"openid", "email", "profile"}


def bearer(browser: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {browser.cookies['_token']}"}


def test_a_code_flow_login_maps_the_idp_group_to_the_fab_role(oidc_api):
    api, _, _ = oidc_api
    callback, alice = oidc_login(api, "alice")
    assert callback.status_code == 302 and "_token" in alice.cookies, callback.text
    created = httpx.post(f"{api}/api/v2/pools", headers=bearer(alice), json={"name": "oidc_pool", "slots": 1},
                         timeout=30)
    assert created.status_code == 201, created.text  # airflow-admins -> Admin

    _, victor = oidc_login(api, "victor")
    assert httpx.get(f"{api}/api/v2/pools", headers=bearer(victor), timeout=30).status_code == 200
    refused = httpx.post(f"{api}/api/v2/pools", headers=bearer(victor), json={"name": "v", "slots": 1}, timeout=30)
    assert refused.status_code == 403, refused.text  # readers -> Viewer


def test_a_user_in_no_mapped_group_is_refused_without_a_default_role(oidc_api):
    api, _, _ = oidc_api
    _, mallory = oidc_login(api, "mallory")
    assert "_token" not in mallory.cookies


def test_password_users_from_settings_stay_the_break_glass_path(oidc_api):
    """Settings' users still get API tokens; sync-users leaves the IdP's users (`sso:...`) active."""
    api, env, _ = oidc_api
    oidc_login(api, "victor")
    admin = user("breakglass", "Admin")
    result = sync_users(env, settings_with_users(admin))
    assert result.returncode == 0, result.stderr
    assert "0 deactivated (-)" in result.stdout, result.stdout
    assert token(api, "breakglass", admin["password"]).status_code == 201
    _, victor = oidc_login(api, "victor")
    assert "_token" in victor.cookies


def test_the_client_secret_never_reaches_the_log(oidc_api):
    api, env, log_file = oidc_api
    oidc_login(api, "alice")
    assert "AUTH_USER_REGISTRATION" in log_file.read_text()  # the api-server's log, FAB's login lines in it
    assert env["AIRSTACK_OIDC_CLIENT_SECRET"] not in log_file.read_text()
