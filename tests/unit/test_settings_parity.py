from pathlib import Path

import yaml

from airstack.settings import parity
from airstack.settings.sops import explain

SOURCE = '''
from airflow.sdk import Variable, BaseHook
from common.images import worker_image
CONN = "orders_db"
a = SQLExecuteQueryOperator(task_id="a", conn_id=CONN, sql="select 1")
b = S3ToRedshiftOperator(task_id="b", aws_conn_id="aws_default", redshift_conn_id="redshift")
c = BashOperator(task_id="c", bash_command="echo {{ var.value.bucket }} {{ conn.sftp_box.host }}")
d = BashOperator(task_id="d", bash_command="{{ var.json.get('cfg') }} {{ var.value.get(\\"x\\", 1) }}")
def f():
    return Variable.get("threshold"), BaseHook.get_connection("ftp")
img = worker_image("pandas-basic")
p = project_pod(project="p", task_id="t", image="spark-basic", script="s.py")
dynamic = SQLExecuteQueryOperator(task_id="e", conn_id=some_function())
'''


def test_scanner_finds_every_form():
    found = {(u.kind, u.name) for u in parity.scan_source(SOURCE, "dags/x.py")}
    assert found == {
        ("connection", "orders_db"), ("connection", "aws_default"), ("connection", "redshift"),
        ("connection", "sftp_box"), ("connection", "ftp"), ("variable", "bucket"), ("variable", "cfg"),
        ("variable", "x"), ("variable", "threshold"), ("image", "pandas-basic"), ("image", "spark-basic"),
    }


def test_scanner_reports_lines():
    (use,) = [u for u in parity.scan_source(SOURCE, "dags/x.py") if u.name == "threshold"]
    assert use.line == 10


def _repo(tmp_path: Path, envs: dict[str, tuple[list[str], dict]]) -> Path:
    (tmp_path / "images" / "pandas-basic").mkdir(parents=True)
    for env, (conns, variables) in envs.items():
        (tmp_path / "settings" / env).mkdir(parents=True)
        doc = {"airflow": {"connections": [{"id": c, "type": "postgres"} for c in conns], "variables": variables}}
        (tmp_path / "settings" / env / "secret.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def test_each_missing_item_is_told_once_with_its_files_and_environments(tmp_path: Path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "d.py").write_text('x = Op(conn_id="warehouse_db")\ny = "{{ var.value.limit }}"\n')
    (tmp_path / "dags" / "e.py").write_text('z = Op(conn_id="warehouse_db")\nimg = worker_image("spark")\n')
    root = _repo(tmp_path, {"local": (["warehouse_db"], {"limit": "ENC[...]"}), "integration": ([], {}),
                            "production": ([], {"limit": "ENC[...]"})})
    assert parity.problems(root, root / "dags") == [
        "image `spark` (used by dags/e.py:2) has no folder images/spark/",
        "connection `warehouse_db` (used by dags/d.py:1, dags/e.py:1) is missing from: integration, production",
        "variable `limit` (used by dags/d.py:2) is missing from: integration",
    ]
    assert parity.problems(root, root / "dags", ["local"]) == [
        "image `spark` (used by dags/e.py:2) has no folder images/spark/"]
    # A file left out (it does not import: its integrity test says so) adds nothing.
    assert parity.problems(root, root / "dags", leave_out={"dags/e.py"}) == [
        "connection `warehouse_db` (used by dags/d.py:1) is missing from: integration, production",
        "variable `limit` (used by dags/d.py:2) is missing from: integration",
    ]


def test_sops_exit_codes_explained():
    assert "none of its keys is available" in explain(128, "settings/x/secret.yaml", "x", "")
    assert "changed outside sops (MAC mismatch)" in explain(51, "f", "x", "")
    assert "does not decrypt (bad ciphertext)" in explain(25, "f", "x", "")
    # an undocumented code: sops' own last line
    assert explain(77, "f", "x", "first\nError: something odd") == "sops failed on f (exit 77): Error: something odd"


def test_missing_recipients_are_reported(tmp_path: Path):
    from airstack.settings import sops_config

    config_path = tmp_path / ".sops.yaml"
    sops_config.add_recipient(config_path, "production", "age1abc", kms_arn="arn:aws:kms:eu-west-1:1:alias/x")
    encrypted = tmp_path / "secret.yaml"
    encrypted.write_text(yaml.safe_dump({"airflow": {}, "sops": {"age": [{"recipient": "age1abc"}]}}))
    config = sops_config.load(config_path)
    assert sops_config.missing_recipients(config, "production", encrypted) == ["kms arn:aws:kms:eu-west-1:1:alias/x"]
