"""Number types in JSON variables, on real sops and a real Airflow 3.3 database (Postgres), read back by Airflow.

sops holds numbers as doubles and gives a whole float back without its fraction (``1.0`` -> ``1``), so a JSON
variable holding ``1.0`` would reach Airflow as the int 1. Settings refuse it in one line, where the document still
shows it: before any write (store.save), and after ``settings-edit`` from the file's own type tags, leaving the
file as it was. Every number that is accepted reaches Airflow with its type.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import textwrap

import pytest

from airstack import proc
from airstack.errors import ConfigError
from airstack.settings import store
from tests.integration.settings_helpers import Repo, document
from tests.integration.test_settings_exact import PROJECT, database, settings_cli, template_db

__all__ = ["database", "template_db"]  # fixtures used here
pytestmark = pytest.mark.postgres
NUMBERS = {"ratio": 1.5, "count": 1, "zero": 0, "negative": -2, "small": 0.001, "list": [0.25, 3]}
READ_BACK = "import json, sys; from airflow.models import Variable; " \
            "print(json.dumps({k: repr(Variable.get(k, deserialize_json=True)) for k in sys.argv[1:]}))"


def airflow_reads(dsn: str, fernet_key: str, *keys: str) -> dict[str, str]:
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn, "AIRFLOW__CORE__FERNET_KEY": fernet_key,
           "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    out = proc.run([sys.executable, "-c", READ_BACK, *keys], env=env, cwd=PROJECT, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def typed(value):
    """``value`` with each leaf paired with its type: 1 and 1.0 compare different."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return type(value).__name__, value


def test_json_variables_reach_airflow_with_their_number_types(repo: Repo, database):
    doc = document(cfg=None)
    doc["airflow"]["variables"].update(cfg=NUMBERS, text='{"ratio": 1.0}')  # a JSON string keeps 1.0 as written
    repo.write(doc)
    settings_cli(repo.root, database, "apply", "local")
    read = airflow_reads(database, doc["airflow"]["keys"]["fernet_key"], "cfg", "text")
    assert typed(ast.literal_eval(read["cfg"])) == typed(NUMBERS)
    assert typed(ast.literal_eval(read["text"])) == {"ratio": ("float", 1.0)}


def test_a_whole_float_is_refused_in_one_line_before_anything_is_written(repo: Repo, database):
    before = repo.path().read_bytes()
    doc = store.decrypt_raw(repo.root, "local")
    doc["airflow"]["variables"]["cfg"] = {"ratio": 1.0, "ok": 1.5}
    with pytest.raises(ConfigError) as exc:
        store.save(repo.root, "local", doc)
    assert str(exc.value) == ("settings/local/secret.yaml: airflow.variables.cfg.ratio: 1.0 is a whole number "
                              "written as a float, which sops gives back as 1, an int: write 1, or give the value as "
                              "a JSON string (text keeps 1.0)")
    assert repo.path().read_bytes() == before


def _editor(tmp_path, value) -> str:
    script = tmp_path / "editor.py"
    script.write_text(textwrap.dedent(f'''
        import sys, yaml
        path = sys.argv[1]
        data = yaml.safe_load(open(path))
        data["airflow"]["variables"]["cfg"] = {value!r}
        open(path, "w").write(yaml.safe_dump(data))
    '''))
    return f"{sys.executable} {script}"


def test_settings_edit_refuses_a_whole_float_and_keeps_the_file(repo: Repo, database, tmp_path, monkeypatch, cli):
    doc = store.decrypt_raw(repo.root, "local")
    doc["airflow"]["variables"]["untouched"] = {"n": 7}  # written through JSON: sops tags it a float
    repo.write(doc)
    before = repo.path().read_bytes()
    monkeypatch.setenv("EDITOR", _editor(tmp_path, {"ratio": 1.0, "n": 2}))
    code, _, err = cli("edit", "local")
    assert code == 1 and err.strip().splitlines() == [
        "error: settings/local/secret.yaml: airflow.variables.cfg.ratio: 1.0 is a whole number written as a float, "
        "which sops gives back as 1, an int: write 1, or give the value as a JSON string (text keeps 1.0)",
        "error: settings/local/secret.yaml: not saved (the file is as it was)"]
    assert repo.path().read_bytes() == before

    monkeypatch.setenv("EDITOR", _editor(tmp_path, {"ratio": 1.5, "n": 2}))  # what the line asks for
    assert cli("edit", "local")[0] == 0  # and the untouched 7, tagged a float before, is no finding
    assert store.decrypt_raw(repo.root, "local")["airflow"]["variables"]["cfg"] == {"ratio": 1.5, "n": 2}
    settings_cli(repo.root, database, "apply", "local")
    fernet = store.load(repo.root, "local").airflow.keys.fernet_key
    read = airflow_reads(database, fernet, "cfg")["cfg"]
    assert typed(ast.literal_eval(read)) == {"ratio": ("float", 1.5), "n": ("int", 2)}
