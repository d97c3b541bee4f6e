"""settings-apply on a real Airflow 3.3 metadata DB: atomic, idempotent, refuses bad input, leaks nothing."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from airstack import proc
from airstack.settings import importer, store
from tests.integration import test_settings_sops as sops_cases
from tests.integration.settings_helpers import document

pytestmark = pytest.mark.postgres
PROJECT = Path(__file__).resolve().parents[2]  # this repository (AIRSTACK_ROOT points at a scratch one)


def test_apply_is_idempotent_and_prints_no_values(repo, restore_db, cli):
    code, out, _ = cli("apply", "local")
    assert code == 0 and "3 add" in out
    assert importer.read_back("variable", "threshold") == "10"
    assert importer.read_back("connection", "warehouse_db")["password"] == "s3cret-pw"
    assert "s3cret-pw" not in out and "db.internal" not in out
    code, out, _ = cli("apply", "local")
    assert code == 0 and "nothing to change" in out


def test_change_and_prune(repo, restore_db, cli):
    assert cli("apply", "local")[0] == 0
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Variable(key="stray", val="x"))
    doc = document(password="rotated-pw")
    repo.write(doc)
    code, out, _ = cli("diff", "local", "--prune")
    assert code == 0 and "password" in out and "stray" in out and "rotated-pw" not in out
    assert importer.read_back("variable", "stray") == "x"  # diff changed nothing
    code, out, _ = cli("apply", "local", "--prune")
    assert code == 0 and importer.read_back("variable", "stray") is None
    assert importer.read_back("connection", "warehouse_db")["password"] == "rotated-pw"
    assert "default_pool" in importer.snapshot().pools  # never pruned


def _doc_breaker(mutate):
    def breaker(repo):
        doc = document()
        mutate(doc["airflow"])
        repo.write(doc)  # encrypted as is: sops does not validate
    return breaker


FILE = "settings/local/secret.yaml: "
SCHEMA_FAILURES = {
    "unknown-type": (_doc_breaker(lambda a: a["connections"][0].update(type="nosuch")),
                     FILE + "airflow.connections[0].type: unknown connection type 'nosuch'"),
    "bad-port": (_doc_breaker(lambda a: a["connections"][0].update(port=99999)),
                 FILE + "airflow.connections[0].port: Input should be less than or equal to 65535"),
    "bad-extra-json": (_doc_breaker(lambda a: a["connections"][0].update(extra="{bad")),
                       FILE + "airflow.connections[0].extra: extra is not valid JSON"),
    "duplicate-id": (_doc_breaker(lambda a: a["connections"].append({"id": "warehouse_db", "type": "http"})),
                     FILE + "airflow.connections[1].id: duplicate id 'warehouse_db'"),
    "bad-fernet": (_doc_breaker(lambda a: a["keys"].update(fernet_key="xyz")),
                   FILE + "airflow.keys.fernet_key: not a Fernet key"),
    "unknown-top-level": (_doc_breaker(lambda a: a.update(dags=[])), FILE + "airflow.dags: Extra inputs"),
    "bad-id": (_doc_breaker(lambda a: a["connections"][0].update(id="Bad Id")),
               FILE + "airflow.connections[0].id: 'Bad Id' must be a lowercase identifier"),
    "bad-pool": (_doc_breaker(lambda a: a["pools"][0].update(slots="many")),
                 FILE + "airflow.pools[0].slots: Input should be a valid integer"),
    "uri-and-fields": (_doc_breaker(lambda a: a["connections"][0].update(uri="postgresql://h/db")),
                       FILE + "airflow.connections[0]: give either uri or"),
    "bad-variables": (_doc_breaker(lambda a: a.update(variables="[1, 2]")),
                      FILE + "airflow.variables: variables must be a JSON object"),
    "short-api-key": (_doc_breaker(lambda a: a["keys"].update(api_secret_key="short")),
                      FILE + "airflow.keys.api_secret_key: String should have at least 32 characters"),
    "unknown-field": (_doc_breaker(lambda a: a["connections"][0].update(passwd="x")),
                      FILE + "airflow.connections[0].passwd: Extra inputs are not permitted"),
}
BAD_INPUTS = {**sops_cases.SOPS_FAILURES, **SCHEMA_FAILURES}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_refused_and_the_database_unchanged(name, repo, restore_db, cli):
    breaker, expected = BAD_INPUTS[name]
    breaker(repo)
    before = importer.snapshot()
    code, out, err = cli("apply", "local")
    assert code == 1, out
    assert expected in err, err
    assert "Traceback" not in err
    assert importer.snapshot() == before


# ------------------------------------------------------------------------ hostile values --
HOSTILE = [
    "", " ", "  leading", "trailing  ", " both ", "'single'", '"double"', "mixed ' and \"", "$(rm -rf /)",
    "`id`", "a;b", "a && b || c", "a | b", "$HOME", "${HOME}", "%s %d %%", "{{ var.value.x }}", "\\", "\\n",
    "line1\nline2", "trailing newline\n", "tab\there", "\r\nwindows", "unicode é ü ñ ß", "日本語テキスト",
    "emoji 🚀🔥👍🏽", "zero\u200bwidth", "rtl \u202e override", "yes", "no", "on", "off", "true", "False",
    "null", "~", "0x10", "010", "1e3", "1_000", ".inf", "-", "---", "...", ": colon", "- dash", "# hash",
    "&anchor", "*alias", "!tag", "[a, b]", "{a: b}", "key: value", "<script>alert(1)</script>", "' OR 1=1 --",
    "\x01\x02\x1f controls", "\x7f del", "ENC[AES256_GCM,data:abc,iv:x,tag:y,type:str]", "a=b", "\\x00 text",
    "x" * 65536,
]


def test_hostile_values_round_trip_byte_exact(repo, restore_db):
    assert len(HOSTILE) >= 50 and all("\x00" not in v for v in HOSTILE)
    doc = document()
    doc["airflow"]["variables"] = {f"v{i:03d}": value for i, value in enumerate(HOSTILE)}
    doc["airflow"]["connections"] += [
        {"id": f"c{i:03d}", "type": "generic", "password": value, "login": value}
        for i, value in enumerate(HOSTILE) if value and len(value) < 2000
    ]
    repo.write(doc)  # file -> encrypt
    settings = store.load(repo.root, "local")  # decrypt -> validate
    importer.apply(settings.airflow)  # import
    for i, value in enumerate(HOSTILE):  # read back through Airflow
        assert importer.read_back("variable", f"v{i:03d}") == value, repr(value[:40])
    for conn in doc["airflow"]["connections"][1:]:
        back = importer.read_back("connection", conn["id"])
        assert (back["password"], back["login"]) == (conn["password"], conn["login"]), repr(conn["password"][:40])


# ------------------------------------------------------------------------------ canary --
def _files_containing(needle: bytes, roots: list[Path], since: float) -> list[str]:
    hits = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                try:
                    stat = path.lstat()
                    if stat.st_mtime < since or not path.is_file() or stat.st_size > 50_000_000:
                        continue
                    if needle in path.read_bytes():
                        hits.append(str(path))
                except OSError:
                    continue
    return hits


class CmdlineWatcher(threading.Thread):
    """Samples every process's argv (/proc/*/cmdline) while settings commands run."""

    def __init__(self, needle: bytes) -> None:
        super().__init__(daemon=True)
        self.needle, self.samples, self.hits, self.running = needle, 0, [], True

    def run(self) -> None:
        while self.running:
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    if self.needle in cmdline.read_bytes():
                        self.hits.append(str(cmdline))
                except OSError:
                    pass
            self.samples += 1

    def stop(self) -> None:
        self.running = False
        self.join()


def test_canary_secret_never_reaches_disk_or_argv(repo, restore_db, cli):
    canary = f"canary-{uuid.uuid4().hex}"
    started = time.time() - 1
    repo.write(document(password=canary, canary_var=canary))
    watcher = CmdlineWatcher(canary.encode())
    watcher.start()
    try:
        for argv in (["check", "local"], ["diff", "local"], ["apply", "local"], ["apply", "local"],
                     ["render", "local"], ["keys", "local", "--rotate-fernet"], ["diff", "local"]):
            code, out, err = cli(*argv)
            assert code == 0, (argv, err)
            if argv[0] != "render":
                assert canary not in out + err, argv
            else:
                assert "AIRFLOW_CONN_WAREHOUSE_DB" in out  # render prints (base64) to its pipe only
    finally:
        watcher.stop()
    assert watcher.samples > 0 and watcher.hits == []
    roots = [repo.root, Path(tempfile.gettempdir()), Path(os.environ["AIRFLOW_HOME"]), PROJECT]
    assert _files_containing(canary.encode(), roots, started) == []
    assert importer.read_back("connection", "warehouse_db")["password"] == canary  # it did get imported


# ------------------------------------------------------------------------------ SIGKILL --
def test_sigkill_leaves_before_or_after_never_between(repo, restore_db):
    """Kill the importing process at 20 random moments: one transaction means all or nothing."""
    before = document()
    after = document(password="after-pw")
    after["airflow"]["variables"] = {f"bulk_{i:03d}": f"value {i}" for i in range(200)}
    after["airflow"]["connections"] += [{"id": f"conn_{i:03d}", "type": "generic", "password": f"p{i}"}
                                        for i in range(200)]
    states = {}
    for name, doc in (("before", before), ("after", after)):
        settings = store.parse_settings(doc, "settings/local/secret.yaml").airflow
        states[name] = importer.desired_state(settings).__dict__
    result = proc.run([sys.executable, "-m", "tests.integration.settings_kill_helper"],
                      input=json.dumps({**states, "trials": 20, "seed": 20261121}),
                      cwd=PROJECT, timeout=240)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    outcomes = [o["state"] for o in report["outcomes"]]
    assert len(outcomes) == 20 and set(outcomes) <= {"before", "after"}, report
