"""Settings that lose nothing, on real sops, a real Airflow 3.3 database (Postgres) and Airflow's own readers.

- every value survives file -> sops -> import -> Airflow -> render -> pods' reader, exactly;
- a Fernet rotation changes the keys and the re-encrypted secrets, nothing else (file and database);
- a Fernet key foreign to the database is one line, and the database is unchanged;
- two applies at once end in one file's state;
- sops' children get only the environment they need; temporary Airflow homes are removed.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from airstack import proc
from airstack.postgres.sql import clone_database, connect, create_database
from airstack.settings import importer, render, sops, store
from airstack.settings.fields import FIELDS
from airstack.settings.keys import new_fernet_key, new_secret
from airstack.settings.values import EXACT_INT
from airstack.settings.schema import parse_settings
from airstack.settings.uri import parse_uri
from tests.integration.settings_helpers import Repo

pytestmark = pytest.mark.postgres
PROJECT = Path(__file__).resolve().parents[2]
FILE = "settings/local/secret.yaml"

# URIs of the shapes Airflow's parser treats specially: encoded credentials, an empty password, a
# host with its own protocol, a percent-encoded host holding '/', __extra__, query extras, no host.
URIS = {
    "uri_encoded": "https://user%40corp:p%3Ass%2Fw%20rd@api.example.com:8443/v1?timeout=30&verify=false&tag=",
    "uri_empty_password": "postgres://etl:@db.internal:5432/warehouse",
    "uri_two_schemes": "spark://k8s://master.example:7077",
    "uri_slash_host": "http://user:pw@https%3A%2F%2Fapi.example.com%2Froot/path",
    "uri_extra_json": "aws://?__extra__=%7B%22region_name%22%3A+%22eu-west-1%22%2C+%22n%22%3A+2%7D",
    "uri_no_credentials": "redis://cache.internal:6379/0",
    "uri_host_only": "smtp://mail.example.org",
}
URI_TYPES = {"uri_encoded": "http", "uri_empty_password": "postgres", "uri_two_schemes": "spark",
             "uri_slash_host": "http", "uri_extra_json": "aws", "uri_no_credentials": "redis", "uri_host_only": "smtp"}


def KEYS() -> dict:  # noqa: N802 - reads like the section it fills
    return {"fernet_key": new_fernet_key(), "api_secret_key": new_secret(), "jwt_secret": new_secret()}


def exact_document() -> dict:
    """Values chosen to be lost on the way: empty strings, whitespace, YAML look-alikes, edges of ranges."""
    connections = [
        {"id": "blanks", "type": "generic", "login": "", "password": "", "host": "", "schema": "", "description": "",
         "port": 1, "extra": {"empty": "", "zero": 0}},
        {"id": "spaced", "type": "postgres", "host": " db.internal ", "login": "  ", "password": "pä ss\tword\n",
         "schema": "w/h", "port": 65535, "description": "two\nlines", "extra": '{"sslmode": "require", "n": 1.5}'},
        {"id": "no_password", "type": "mysql", "host": "h", "login": "reader"},
        *({"id": cid, "type": URI_TYPES[cid], "uri": uri, "description": f"{cid} ✓"} for cid, uri in URIS.items()),
    ]
    return {"airflow": {
        "keys": KEYS(), "connections": connections,
        "variables": {"empty": "", "space": " ", "null_text": "null", "tilde": "~", "exp": "1e3", "octal": "0o17",
                      "yes_letter": "y", "no_letter": "N", "signed_exp": "+1E3", "crlf": "a\r\nb",
                      "json_text": '{"a":1}', "unicode": "Grüße 🚀 \u202e",
                      "mapping": {"max": EXACT_INT, "min": -EXACT_INT, "half": 0.5, "list": [1, "two", None, True]}},
        "pools": [{"name": "quiet", "slots": 0, "description": ""},
                  {"name": "unlimited", "slots": -1, "include_deferred": True, "description": "∞"},
                  {"name": "widest", "slots": 2**31 - 1}],
    }}


# ------------------------------------------------------------------------------ helpers --
@pytest.fixture(scope="module")
def template_db(postgres, tmp_path_factory):
    """A migrated Airflow database that tests clone (nobody stays connected to it)."""
    dsn = create_database(postgres.dsn, "settings_exact_template")
    airflow = Path(sys.executable).parent / "airflow"
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("migrate-home"))}
    proc.run([airflow, "db", "migrate"], env=env, cwd=PROJECT, timeout=300)
    return dsn


@pytest.fixture()
def database(template_db, request):
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    return clone_database(template_db, name)


def settings_cli(repo_root: Path, dsn: str, *argv: str, check: bool = True) -> proc.Result:
    """The settings CLI in a process of its own: it uses the file's Fernet key, as users run it."""
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn, "AIRSTACK_ROOT": str(repo_root),
           "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    return proc.run([sys.executable, "-m", "airstack.settings", *argv], env=env, cwd=PROJECT, timeout=300,
                    check=check)


def db_state(dsn: str, fernet_keys: list[str]) -> tuple[dict, dict]:
    """(decrypted state, raw tokens) read with plain SQL and ``cryptography``: no Airflow, no cached key."""
    fernet = MultiFernet([Fernet(k.encode()) for k in fernet_keys])

    def plain(token, encrypted):
        return fernet.decrypt(token.encode()).decode() if token and encrypted else token

    conn = connect(dsn)
    state: dict = {"connections": {}, "variables": {}, "pools": {}}
    tokens = {}
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT conn_id, conn_type, description, host, port, login, password, schema, extra, "
                        "is_encrypted, is_extra_encrypted FROM connection")
            for cid, ctype, desc, host, port, login, pw, schema, extra, enc, extra_enc in cur.fetchall():
                extra_text = plain(extra, extra_enc)
                state["connections"][cid] = {"conn_type": ctype, "description": desc, "host": host, "port": port,
                                             "login": login, "password": plain(pw, enc), "schema": schema,
                                             "extra": (json.loads(extra_text) or None) if extra_text else None}
                tokens[f"connection:{cid}"] = (pw, extra)
            cur.execute("SELECT key, val, is_encrypted FROM variable")
            for key, val, enc in cur.fetchall():
                state["variables"][key] = plain(val, enc)
                tokens[f"variable:{key}"] = val
            cur.execute("SELECT pool, slots, description, include_deferred FROM slot_pool WHERE pool != 'default_pool'")
            for name, slots, desc, deferred in cur.fetchall():
                state["pools"][name] = {"slots": slots, "description": desc, "include_deferred": deferred}
    finally:
        conn.close()
    return state, tokens


def expected_state(document: dict) -> dict:
    return importer.desired_state(parse_settings(document, FILE).airflow).__dict__


def without_keys(document: dict) -> str:
    rest = copy.deepcopy(document)
    rest["airflow"].pop("keys")
    return json.dumps(rest, sort_keys=True, ensure_ascii=False)


def file_shape(path: Path) -> str:
    """The file without sops' metadata and airflow.keys, each encrypted value replaced by its type."""
    data = yaml.safe_load(path.read_text())
    data.pop("sops")
    data["airflow"].pop("keys")

    def shape(node):
        if isinstance(node, dict):
            return {k: shape(v) for k, v in node.items()}
        if isinstance(node, list):
            return [shape(v) for v in node]
        if isinstance(node, str) and node.startswith("ENC[AES256_GCM,"):
            return "ENC:" + node.rsplit("type:", 1)[1]
        return node
    return json.dumps(shape(data), sort_keys=True)


# ------------------------------------------------------------------------ exact values --
def test_uris_are_parsed_as_airflow_parses_them():
    from airflow.models.connection import Connection

    for cid, uri in URIS.items():
        airflow = Connection(conn_id=cid, uri=uri)
        ours = parse_uri(uri)
        theirs = {f: getattr(airflow, f) for f in ("host", "port", "login", "password", "schema")}
        theirs["extra"] = json.loads(airflow.extra) if airflow.extra else None
        assert ours == theirs, cid


def test_every_value_survives_the_whole_way_exactly(repo: Repo, database, monkeypatch):
    document = exact_document()
    repo.write(document)
    decrypted = store.decrypt_raw(repo.root, "local")
    assert decrypted == document  # file -> sops -> back: exact (bytes of every string, numbers as written)
    settings_cli(repo.root, database, "apply", "local")
    keys = [document["airflow"]["keys"]["fernet_key"]]
    in_db, _ = db_state(database, keys)
    want = expected_state(document)
    assert in_db == want  # import: every field, empty strings as empty strings, NULL only where nothing was given
    assert in_db["connections"]["blanks"]["login"] == "" and in_db["pools"]["quiet"]["description"] == ""
    assert in_db["connections"]["no_password"]["password"] is None
    assert json.loads(in_db["variables"]["mapping"])["max"] == EXACT_INT

    # What pods get (settings-render) is what the database holds, read by Airflow's environment backend the
    # way task code reads it (the Task SDK's Connection), and the way core Airflow does (models.Connection).
    from airflow.models.connection import Connection as CoreConnection
    from airflow.sdk import Connection as TaskConnection
    from airflow.secrets.environment_variables import EnvironmentVariablesBackend

    settings = store.load(repo.root, "local").airflow
    for name, value in render.env_data(settings).items():
        monkeypatch.setenv(name, value)
    for conn_class in (TaskConnection, CoreConnection):
        backend = EnvironmentVariablesBackend()
        backend._set_connection_class(conn_class)
        for cid, stored in in_db["connections"].items():
            fields = dict(stored)
            conn = backend.get_connection(cid)
            from_env = {f: getattr(conn, f) for f in FIELDS if f != "extra"}
            from_env["extra"] = conn.extra_dejson or None
            if conn_class is CoreConnection and fields["password"] == "":
                # models.Connection's password setter drops an empty password (Airflow's own quirk, not ours).
                assert from_env.pop("password") is None and fields.pop("password") == ""
            assert from_env == fields, (conn_class.__module__, cid)
        for key, value in in_db["variables"].items():
            assert backend.get_variable(key) == value, key
    assert "0 add, 0 change, 0 remove" in settings_cli(repo.root, database, "diff", "local").stdout


def test_rotation_changes_the_keys_and_nothing_else(repo: Repo, database, cli):
    document = exact_document()
    repo.write(document)
    settings_cli(repo.root, database, "apply", "local")
    old = document["airflow"]["keys"]
    db_before, tokens_before = db_state(database, [old["fernet_key"]])
    shape_before = file_shape(repo.path())

    assert cli("keys", "local", "--rotate-fernet")[0] == 0
    rotated = store.decrypt_raw(repo.root, "local")
    new = rotated["airflow"]["keys"]
    assert new["fernet_key"] != old["fernet_key"] and new["fernet_key_previous"] == [old["fernet_key"]]
    assert (new["api_secret_key"], new["jwt_secret"]) == (old["api_secret_key"], old["jwt_secret"])
    assert without_keys(rotated) == without_keys(document)  # every other value, byte for byte
    assert file_shape(repo.path()) == shape_before  # and the file's plaintext parts and value types
    assert db_state(database, [old["fernet_key"]])[1] == tokens_before  # the database is not touched yet

    settings_cli(repo.root, database, "keys", "local", "--finish-rotation")
    finished = store.decrypt_raw(repo.root, "local")
    assert finished["airflow"]["keys"]["fernet_key_previous"] == [] and without_keys(finished) == without_keys(document)
    db_after, tokens_after = db_state(database, [new["fernet_key"]])
    assert db_after == db_before  # every value in the database, decrypted, unchanged
    changed = [k for k, t in tokens_after.items() if t != tokens_before[k]]
    encrypted = [k for k, t in tokens_before.items() if (t[0] or t[1] if isinstance(t, tuple) else t)]
    assert sorted(changed) == sorted(encrypted)  # exactly the encrypted values were re-encrypted
    with pytest.raises(InvalidToken):
        Fernet(old["fernet_key"].encode()).decrypt(tokens_after["variable:empty"].encode())
    assert "0 add, 0 change, 0 remove" in settings_cli(repo.root, database, "diff", "local").stdout


def test_a_fernet_key_foreign_to_the_database_is_one_line(repo: Repo, database):
    document = exact_document()
    repo.write(document)
    settings_cli(repo.root, database, "apply", "local")
    _, tokens_before = db_state(database, [document["airflow"]["keys"]["fernet_key"]])
    store.save_keys(repo.root, "local", {**document["airflow"]["keys"], "fernet_key": new_fernet_key()})
    for verb in (["apply", "local"], ["diff", "local"]):
        result = settings_cli(repo.root, database, *verb, check=False)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {FILE}: airflow.keys.fernet_key: connection 'blanks' in the database "
                                   "does not decrypt"), lines[0]
        assert "fernet_key_previous" in lines[0] and "--finish-rotation" in lines[0]
    assert db_state(database, [document["airflow"]["keys"]["fernet_key"]])[1] == tokens_before


# -------------------------------------------------------------------------- concurrency --
def _waiting_for_the_lock(dsn: str) -> int:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_two_applies_at_once_end_in_one_files_state(repo: Repo, database, tmp_path):
    """Both applies are made to wait on the lock, then run: each file's whole state, never a mix of both."""
    keys = {"fernet_key": new_fernet_key(), "api_secret_key": new_secret(), "jwt_secret": new_secret()}

    def doc(first: str, second: str) -> dict:
        variables = {f"v{i:04d}": f"{first if i < 500 else second}-{i}" for i in range(1000)}
        conns = [{"id": f"c{i:02d}", "type": "generic", "password": f"{first if i < 20 else second}-{i}"}
                 for i in range(40)]
        return {"airflow": {"keys": keys, "connections": conns, "variables": variables, "pools": []}}

    base, a, b = doc("base", "base"), doc("a", "base"), doc("base", "b")  # each changes its half of 1,040 items
    repo.write(base)
    settings_cli(repo.root, database, "apply", "local", "--prune")
    other = Repo(tmp_path / "other", repo.local, repo.integration)
    shutil.copytree(repo.root, other.root)
    repo.write(a)
    other.write(b)
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database}
    holder = connect(database)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (importer.LOCK_KEY,))
        applies = [subprocess.Popen([sys.executable, "-m", "airstack.settings", "apply", "local", "--prune"],
                                    env={**env, "AIRSTACK_ROOT": str(root)}, cwd=PROJECT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for root in (repo.root, other.root)]
        deadline = time.monotonic() + 120
        while _waiting_for_the_lock(database) < 2:
            assert time.monotonic() < deadline and all(p.poll() is None for p in applies), "the applies never waited"
            time.sleep(0.2)
    finally:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock_all()")
        holder.close()
    outputs = [p.communicate(timeout=300) for p in applies]
    assert [p.returncode for p in applies] == [0, 0], outputs
    assert all("waiting for it" in err for _, err in outputs)
    final, _ = db_state(database, [keys["fernet_key"]])
    assert final in (expected_state(a), expected_state(b)), "the database holds a mix of both files"


# --------------------------------------------------------------------------- processes --
def test_sops_gets_no_airflow_key(repo: Repo, restore_db, cli, tmp_path, monkeypatch):
    log = tmp_path / "sops-env.jsonl"
    wrapper = tmp_path / "sops"
    wrapper.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                       f"open({str(log)!r}, 'a').write(json.dumps(sorted(os.environ)) + '\\n')\n"
                       f"os.execv({sops.sops_binary()!r}, [{sops.sops_binary()!r}, *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(sops, "sops_binary", lambda: str(wrapper))
    assert cli("apply", "local")[0] == 0
    assert cli("keys", "local", "--rotate-fernet")[0] == 0
    assert cli("keys", "local", "--finish-rotation")[0] == 0  # sets AIRFLOW__CORE__FERNET_KEY for Airflow first
    assert os.environ["AIRFLOW__CORE__FERNET_KEY"]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) >= 4
    for names in calls:
        assert "SOPS_AGE_KEY" in names
        assert not [n for n in names if n.startswith("AIRFLOW")], names


def test_no_temporary_airflow_home_is_left_behind(repo: Repo, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp), "AIRSTACK_ROOT": str(repo.root)}
    inherit = ("PYTHON*", "VIRTUAL_ENV", "XDG_CONFIG_HOME")
    ok = proc.run([sys.executable, "-m", "airstack.settings", "check", "local"], env=env, inherit=inherit, cwd=PROJECT)
    failed = proc.run([sys.executable, "-m", "airstack.settings", "apply", "local"], env=env, inherit=inherit,
                      cwd=PROJECT, check=False)  # no database: an error, after the home was made
    assert "valid" in ok.stdout and failed.returncode == 1 and "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in failed.stderr
    assert list(tmp.glob("airstack-settings-home-*")) == []
