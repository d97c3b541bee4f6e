"""Keep the FAB auth manager's users as settings/<env>/secret.yaml says (airflow.users).

Runs with the runtime image's Python as the api-server pods' `sync-users` init container (the
deploy's payload for the official chart: airstack.deploy.chart_values.users_sync_container), after the
pod's wait-for-migrations init container (airstack.deploy.schema_wait: FAB's tables are migrated by
then) and before the api-server starts, and in tests/integration/test_fab_auth.py against a real Postgres.

Input, all from the environment (never argv, never a file):
  AIRSTACK_USERS   JSON list of {username, role, email, first_name, last_name, password}, from
                   Secret <release>-users (the platform chart); absent or empty: nothing changes
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, AIRFLOW__CORE__AUTH_MANAGER (FabAuthManager)

Each user is created or brought in line (role, names, email, password); a user the file no longer
lists is deactivated, not deleted (users of the OIDC provider, named `<provider>:...`, are left
alone). Prints counts and usernames, never a password. Exit 1 with one
line on a problem. No Jinja braces in this file: the chart renders init containers with `tpl`.
"""

import json
import os
import sys


def fail(message):
    print(f"sync-users: {message}", file=sys.stderr)
    sys.exit(1)


def wanted_users():
    raw = os.environ.get("AIRSTACK_USERS", "").strip()
    if not raw:
        return []
    try:
        users = json.loads(raw)
    except ValueError:
        fail("AIRSTACK_USERS is not JSON")
    if not isinstance(users, list):
        fail("AIRSTACK_USERS is not a list")
    return users


def check_tables():
    """FAB's tables are there (no waiting here: the wait-for-migrations init container ran first)."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        found = set(inspect(engine).get_table_names())
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        fail(f"the metadata database does not answer ({exc.__class__.__name__})")
    finally:
        engine.dispose()
    if not {"ab_user", "ab_role"} <= found:
        fail("FAB's tables are not there: run `airflow db migrate` first (in a pod, the wait-for-migrations "
             "init container runs before this one)")


def sync(users):
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    created, updated, deactivated = [], [], []
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        if any(sm.find_role(u["role"]) is None for u in users):
            sm.sync_roles()  # the default roles (Admin, Op, User, Viewer, Public) with their permissions
        for user in users:
            role = sm.find_role(user["role"])
            if role is None:
                fail(f"user {user['username']}: no role {user['role']!r}")
            existing = sm.find_user(username=user["username"])
            if existing is None:
                if not sm.add_user(username=user["username"], first_name=user["first_name"],
                                   last_name=user["last_name"], email=user["email"], role=role,
                                   password=user["password"]):
                    fail(f"user {user['username']}: FAB refused to create it (is the email used by another user?)")
                created.append(user["username"])
                continue
            existing.roles = [role]
            existing.first_name, existing.last_name = user["first_name"], user["last_name"]
            existing.email, existing.active = user["email"], True
            sm.update_user(existing)
            sm.reset_password(existing.id, user["password"])
            updated.append(user["username"])
        listed = {u["username"] for u in users}
        for other in sm.get_all_users():
            # `<provider>:name`: a user of the OIDC provider (files/webserver_config.py), kept by the IdP.
            if other.username not in listed and ":" not in other.username and other.active:
                other.active = False
                sm.update_user(other)
                deactivated.append(other.username)
    return created, updated, deactivated


def main():
    users = wanted_users()
    if not users:
        print("sync-users: no users in settings: nothing changed")
        return
    check_tables()
    created, updated, deactivated = sync(users)
    print(f"sync-users: {len(created)} created ({', '.join(created) or '-'}), {len(updated)} updated, "
          f"{len(deactivated)} deactivated ({', '.join(deactivated) or '-'})")


if __name__ == "__main__":
    main()
