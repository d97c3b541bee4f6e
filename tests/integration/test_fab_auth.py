"""Deploys' auth manager for real: FabAuthManager (apache-airflow-providers-fab, in the runtime lock) in a
real Airflow 3.3 api-server on 127.0.0.1, on a real Postgres, with users kept from settings by the
very script the api-server pods' sync-users init container runs (charts/platform/files/sync_users.py).

No cluster here: the script runs as that container would (``python3 -c <script>``, inputs in the
environment), and the api-server is started directly rather than by the chart.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import httpx
import pytest

from airstack import proc
from airstack.airflow_env import base_env
from airstack.deploy.auth_policy import FAB_AUTH_MANAGER
from airstack.deploy.chart_values import USERS_SCRIPT
from airstack.postgres import sql
from airstack.postgres.embedded import free_port
from airstack.settings import render
from airstack.settings.schema import parse_settings
from tests.helpers import server

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).parent / "airflow"


def settings_with_users(*users: dict):
    """Decrypted settings as a deploy holds them in memory, validated by the settings schema."""
    return parse_settings({"airflow": {"users": list(users)}}, "settings/integration/secret.yaml")


def user(username: str, role: str = "Viewer") -> dict:
    return {"username": username, "role": role, "email": f"{username}@example.invalid", "first_name": username.title(),
            "last_name": "Test", "password": secrets.token_urlsafe(18)}


def make_fab_env(dsn: str, home: Path, database: str) -> dict[str, str]:
    """A database of its own on the session's Postgres, migrated with the FAB auth manager configured
    (which makes FAB's ab_* tables), and the environment every process of a module shares."""
    env = {**base_env(home, home / "dags", home / "plugins"),
           "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql.create_database(dsn, database),
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
           "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
           "AIRFLOW__API__WORKERS": "1"}
    proc.run([AIRFLOW, "db", "migrate"], env=env, timeout=300, what="airflow db migrate")
    return env


@pytest.fixture(scope="module")
def fab_env(postgres, tmp_path_factory) -> dict[str, str]:
    return make_fab_env(postgres.dsn, tmp_path_factory.mktemp("fab-home"), "fab_auth")


def sync_users(env: dict[str, str], settings) -> proc.Result:
    """What the sync-users init container runs, with Secret <release>-users as AIRSTACK_USERS."""
    script = (ROOT / USERS_SCRIPT).read_text()
    return proc.run([sys.executable, "-c", script], check=False, timeout=180,
                    env={**env, "AIRSTACK_USERS": render.users_data(settings.airflow)},
                    secret_env=("AIRSTACK_USERS",))


@pytest.fixture(scope="module")
def fab_api(fab_env, tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = tmp_path_factory.mktemp("fab-api") / "api-server.log"
    with server([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)], log_file,
                f"{url}/api/v2/monitor/health", 120, env=fab_env):
        yield url


def token(url: str, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/auth/token", json={"username": username, "password": password}, timeout=30)


def test_fab_refuses_anonymous_calls_and_accepts_a_user_from_settings(fab_env, fab_api):
    ada, bob = user("ada", "Admin"), user("bob")
    result = sync_users(fab_env, settings_with_users(ada, bob))
    assert result.returncode == 0, result.stderr
    assert "2 created (ada, bob)" in result.stdout
    assert ada["password"] not in result.stdout + result.stderr and bob["password"] not in result.stdout

    anonymous = httpx.get(f"{fab_api}/api/v2/dags", timeout=30)
    assert anonymous.status_code in (401, 403), anonymous.text
    assert token(fab_api, "ada", ada["password"] + "x").status_code == 401

    issued = token(fab_api, "ada", ada["password"])
    assert issued.status_code == 201, issued.text
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    listed = httpx.get(f"{fab_api}/api/v2/dags", headers=headers, timeout=30)
    assert listed.status_code == 200 and "dags" in listed.json()
    # A Viewer reads but cannot change: the role from settings is the one FAB enforces.
    viewer = {"Authorization": f"Bearer {token(fab_api, 'bob', bob['password']).json()['access_token']}"}
    assert httpx.get(f"{fab_api}/api/v2/pools", headers=viewer, timeout=30).status_code == 200
    created = httpx.post(f"{fab_api}/api/v2/pools", headers=viewer, json={"name": "p", "slots": 1}, timeout=30)
    assert created.status_code == 403, created.text


def test_settings_stay_the_source_of_users(fab_env, fab_api):
    """A new password applies, a user the file no longer lists can no longer log in, a rerun is idempotent."""
    ada = user("ada", "Admin")
    assert sync_users(fab_env, settings_with_users(ada, user("bob"))).returncode == 0
    result = sync_users(fab_env, settings_with_users(ada))
    assert result.returncode == 0, result.stderr
    assert "0 created (-), 1 updated, 1 deactivated (bob)" in result.stdout
    assert token(fab_api, "ada", ada["password"]).status_code == 201
    # bob's last password no longer opens anything.
    assert token(fab_api, "bob", "whatever-it-was-1").status_code == 401
    again = sync_users(fab_env, settings_with_users(ada))
    assert "0 created (-), 1 updated, 0 deactivated (-)" in again.stdout


def test_no_users_changes_nothing_and_a_bad_role_is_refused(fab_env):
    empty = sync_users(fab_env, settings_with_users())
    assert empty.returncode == 0 and "no users in settings: nothing changed" in empty.stdout
    with pytest.raises(Exception, match="role"):
        settings_with_users({**user("eve"), "role": "Root"})
