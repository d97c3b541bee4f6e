"""A preview's own metadata database: never integration's URL in what it renders, made and dropped on a real Postgres.

The rendering is the real Helm engine's (our platform chart, which holds the metadata Secret). The deploys are
replayed as in tests/deploy/test_previews.py: the scratch repository with throwaway sops keys, the moto server,
the recording helm stand-in; integration's ``metadata_connection`` names a real Postgres (the tests'
``postgres``) as a role that is no superuser but may create databases and roles, as an RDS master user.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg
import pytest
import yaml
from psycopg import sql

from airstack.cli import run_main
from airstack.deploy import config, preview_db
from airstack.deploy import chart_values, helm_binary, target
from airstack.deploy.main import main
from airstack.deploy.replay import dags_remote
from airstack.settings.schema import parse_settings
from tests.helpers import leaves

ROOT = Path(__file__).resolve().parents[2]
FILE = "settings/integration/secret.yaml"
BRANCH = "feature/own-db"


def _integration_parts(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {"url": url, "user": parts.username, "password": unquote(parts.password),
            "encoded password": parts.password, "database": parts.path.lstrip("/")}


# ------------------------------------------------------------------------------------------ rendering --
def test_a_rendered_preview_carries_nothing_of_integrations_database(scratch_repo, capsys):
    import helm_python

    _, document = scratch_repo
    integration = "postgresql+psycopg2://integ_owner_x7:" + quote("pw/" + "Q9z" * 8, safe="") + \
        "@db.internal.example:6543/integ_meta_x7?sslmode=require"
    document["airflow"]["metadata_connection"] = integration
    settings = parse_settings(document, FILE)
    spec = config.load(ROOT, "integration").spec
    tgt = target.target(spec.helm, config.preview_name(BRANCH))
    preview = preview_db.provision(settings, tgt.namespace, FILE, dry_run=True)  # what the deploy does
    database, _ = preview_db.names(tgt.namespace)
    assert f"would make (if absent) database {database} and role {database}" in capsys.readouterr().out

    platform = chart_values.platform_values(preview, tgt, "reg/airflow:t", spec.airflow)
    official = chart_values.airflow_values(tgt, "reg/airflow:t", {}, chart_values.settings_digest(platform),
                                           spec.airflow, (ROOT / chart_values.USERS_SCRIPT).read_text())
    values = {}
    for name in spec.helm.platform.values:
        values = chart_values.merge_values(values, yaml.safe_load((ROOT / name).read_text()) or {})
    with helm_python.Chart.load(str(ROOT / "charts" / "platform")) as chart:
        rendered = chart.render(values=chart_values.merge_values(values, platform), name=tgt.platform_release,
                                namespace=tgt.namespace, is_install=True)
    objects = [d for path, text in rendered.items() if not path.endswith("NOTES.txt") for d in yaml.safe_load_all(text)
               if d]
    decoded = [base64.b64decode(v).decode() for d in objects if d["kind"] == "Secret" for v in d["data"].values()]
    everything = "\n".join([helm_binary.to_stdin(platform), helm_binary.to_stdin(official), *rendered.values(),
                            *decoded])
    for what, value in _integration_parts(integration).items():
        assert value not in everything, f"integration's database {what} is in the preview's values or manifests"

    (url,) = [base64.b64decode(d["data"]["connection"]).decode() for d in objects
              if d["kind"] == "Secret" and d["metadata"]["name"] == f"{tgt.airflow_release}-metadata"]
    mine, theirs = urlsplit(url), urlsplit(integration)
    # Host and port are shared by design (the same server); user, password and database are not.
    assert (mine.hostname, mine.port) == (theirs.hostname, theirs.port) == ("db.internal.example", 6543)
    assert mine.username == mine.path.lstrip("/") == database
    assert {mine.username, mine.password, mine.path} & {theirs.username, theirs.password, theirs.path} == set()


# ----------------------------------------------------------------------------------- on a real Postgres --
def _exists(superuser: str, name: str) -> tuple[bool, bool]:
    with psycopg.connect(superuser) as conn:
        database = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]
        role = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)).fetchone()[0]
    return bool(database), bool(role)


def _upgrades(calls):
    return [c for c in calls() if c["argv"][:1] == ["upgrade"]]


def test_deploy_preview_makes_its_own_database_and_destroy_drops_it(deployable, preview_server, helm_standin,
                                                                    preview_aws, capsys):
    url, superuser = preview_server
    name = config.preview_name(BRANCH)
    database, _ = preview_db.names(name)
    deploy = ["integration", "--only", "helm", "--preview", "--branch", BRANCH]

    assert run_main(main, ["plan", *deploy]) == 0
    assert f"would make (if absent) database {database}" in capsys.readouterr().out
    assert _exists(superuser, database) == (False, False), "a plan makes nothing"

    assert run_main(main, ["deploy", *deploy, "--yes"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"role {database}: created" in out and f"database {database}: created" in out
    assert _exists(superuser, database) == (True, True)
    mine = preview_db.plan(url, name, FILE).url
    with psycopg.connect(mine.replace("postgresql+psycopg2://", "postgresql://")) as conn:  # its URL logs in
        conn.execute("CREATE TABLE dag_run_probe (id int)")
        conn.execute("INSERT INTO dag_run_probe VALUES (42)")
        assert conn.execute("SELECT current_user, current_database(), sum(id) FROM dag_run_probe").fetchone() == (
            database, database, 42)
    # Helm got the preview's URL on stdin, never integration's (the stand-in records digests of each value).
    sent = {v for call in _upgrades(helm_standin) for v in leaves(call["stdin"])}
    assert hashlib.sha256(mine.encode()).hexdigest() in sent
    assert hashlib.sha256(url.encode()).hexdigest() not in sent

    assert run_main(main, ["deploy", *deploy, "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"role {database}: exists (password set)" in out and f"database {database}: exists" in out
    assert f"{name}-platform: no changes" in out and f"{name}: no changes" in out, "the same values again"
    assert len(_upgrades(helm_standin)) == 2

    session = psycopg.connect(mine.replace("postgresql+psycopg2://", "postgresql://"))  # a pod still connected
    assert run_main(main, ["destroy", "integration", "--preview", BRANCH, "--yes"]) == 0
    assert f"{name}: database {database} and role {database}: removed" in capsys.readouterr().out
    assert _exists(superuser, database) == (False, False), "its sessions were ended, then it was dropped"
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    integration = urlsplit(url)
    assert _exists(superuser, integration.path.lstrip("/"))[0] and _exists(superuser, integration.username)[1], \
        "integration's own database and role stay"
    assert run_main(main, ["destroy", "integration", "--preview", BRANCH, "--yes"]) == 0
    assert f"{name}: database {database} and role {database}: already absent" in capsys.readouterr().out


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unreachable(root: Path, document: dict, url: str, superuser: str) -> str:
    from airstack.deploy.replay import git_checkout
    from airstack.settings import store

    parts = urlsplit(url)
    port = _closed_port()
    document["airflow"]["metadata_connection"] = url.replace(f":{parts.port}/", f":{port}/")
    store.save(root, "integration", document)
    git_checkout(root)
    return f"database server 127.0.0.1:{port}: "


def _no_createdb(root: Path, document: dict, url: str, superuser: str) -> str:
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOCREATEDB").format(sql.Identifier(urlsplit(url).username)))
    return "permission denied to create database (what it had created was dropped again)"


@pytest.mark.parametrize("refuse", [_unreachable, _no_createdb], ids=["unreachable", "no-createdb"])
def test_a_server_that_refuses_is_one_line_and_nothing_of_the_preview_is_made(
        deployable, preview_server, helm_standin, preview_aws, refuse, capsys):
    root, document = deployable
    url, superuser = preview_server
    expected = refuse(root, document, url, superuser)
    database, _ = preview_db.names(config.preview_name(BRANCH))
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--preview", "--branch", BRANCH, "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert urlsplit(url).password not in err[0]
    assert _exists(superuser, database) == (False, False), "no role left behind without its database"
    assert _upgrades(helm_standin) == [] and preview_aws.associations == {}
    assert not dags_remote(root).exists(), "the DAG bundle's ref was not pushed either"


def test_a_database_of_the_previews_name_that_is_not_its_own_is_left_alone(preview_server):
    url, superuser = preview_server
    db = preview_db.plan(url, config.preview_name(BRANCH), FILE)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.database)))  # someone else's
    for action in (preview_db.ensure, preview_db.drop):
        with pytest.raises(preview_db.PreviewDatabaseError, match="exists and is not this preview's"):
            action(db, url)
    assert _exists(superuser, db.database) == (True, False)


def test_the_database_step_on_postgres_16_as_a_createrole_user():
    """Postgres 16 gives a CREATEROLE user's own grant of a role it made neither INHERIT nor SET, so without
    the step's own grant `CREATE DATABASE ... OWNER` is refused ("must be able to SET ROLE"). The pgserver
    wheel's Postgres 16, embedded."""
    from airstack.postgres import Binaries, pgserver_bin_dir
    from airstack.postgres.embedded import embedded
    from airstack.postgres.sql import libpq_url, with_database

    folder = pgserver_bin_dir()
    if folder is None:
        pytest.skip("needs the pgserver wheel's Postgres 16 (requirements/dev.txt)")
    with embedded(Binaries(folder, from_wheel=True)) as server:
        superuser = libpq_url(with_database(server.dsn, "postgres"))
        with psycopg.connect(superuser, autocommit=True) as conn:
            assert conn.info.server_version >= 160000
            conn.execute("CREATE ROLE integ LOGIN CREATEDB CREATEROLE PASSWORD 'integ-password-16'")
            conn.execute("CREATE DATABASE integ_meta OWNER integ")
        url = f"postgresql+psycopg2://integ:integ-password-16@{urlsplit(server.dsn).netloc.split('@')[1]}/integ_meta"
        db = preview_db.plan(url, "airflow-pg16", FILE)
        done = preview_db.ensure(db, url)
        assert done[0] == "role preview_airflow_pg16: created"
        assert done[1].startswith("database preview_airflow_pg16: created")
        with psycopg.connect(db.url.replace("postgresql+psycopg2", "postgresql")) as conn:
            conn.execute("CREATE TABLE t (i int)")
        assert preview_db.drop(db, url) is True and _exists(superuser, db.database) == (False, False)
