"""dags/common/storage.py: the same calls on a local folder and on S3 (the moto stand-in, for real)."""

from __future__ import annotations

import sys

from airstack import paths

sys.path.insert(0, str(paths.dags_folder()))
from common.storage import storage_base, storage_root  # noqa: E402


def test_base_defaults_to_airflow_home_and_accepts_paths(tmp_path):
    assert storage_base({"AIRFLOW_HOME": str(tmp_path)}) == ((tmp_path / "storage").as_uri(), None)
    assert storage_base({"AIRSTACK_STORAGE_BASE": str(tmp_path / "d") + "/"}) == ((tmp_path / "d").as_uri(), None)
    assert storage_base({"AIRSTACK_STORAGE_BASE": "s3://b/p", "AIRSTACK_STORAGE_CONN_ID": "aws"}) == ("s3://b/p", "aws")


def _round_trip(root) -> list[str]:
    target = root / "project" / "day=2026-11-21" / "orders.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("id,amount\n1,12.5\n")
    with target.open("r") as handle:
        assert handle.read() == "id,amount\n1,12.5\n"
    assert target.exists() and not (root / "project" / "missing.csv").exists()
    return sorted(p.name for p in (root / "project").iterdir())


def test_local_folder(tmp_path):
    root = storage_root({"AIRSTACK_STORAGE_BASE": str(tmp_path / "data")})
    assert _round_trip(root) == ["day=2026-11-21"]
    assert (tmp_path / "data" / "project" / "day=2026-11-21" / "orders.csv").read_text().startswith("id,amount")


def test_s3_stand_in(s3_standin, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_STORAGE_TEST", s3_standin["connection"])
    root = storage_root({"AIRSTACK_STORAGE_BASE": f"s3://{s3_standin['bucket']}/data",
                         "AIRSTACK_STORAGE_CONN_ID": "aws_storage_test"})
    assert _round_trip(root) == ["day=2026-11-21"]
    body = s3_standin["client"].get_object(Bucket=s3_standin["bucket"], Key="data/project/day=2026-11-21/orders.csv")
    assert body["Body"].read() == b"id,amount\n1,12.5\n"  # really in the bucket, read back with boto3
