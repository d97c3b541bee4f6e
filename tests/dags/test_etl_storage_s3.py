"""The ETL example with its storage on S3 (the moto stand-in): the same DAG file, another base."""

from __future__ import annotations

import pytest

from tests.dags.conftest import run_here

pytestmark = pytest.mark.postgres


def test_etl_lands_its_file_in_s3(airflow_settings, s3_standin, monkeypatch):
    from airstack.postgres.sql import connect

    monkeypatch.setenv("AIRFLOW_CONN_AWS_ETL_TEST", s3_standin["connection"])
    monkeypatch.setenv("AIRSTACK_STORAGE_BASE", f"s3://{s3_standin['bucket']}/etl-run")
    monkeypatch.setenv("AIRSTACK_STORAGE_CONN_ID", "aws_etl_test")
    run = run_here("etl_postgres.py", "etl_postgres_orders", logs="etl-storage-s3")
    assert run.ok, run.explain()

    listed = s3_standin["client"].list_objects_v2(Bucket=s3_standin["bucket"], Prefix="etl-run/etl/orders/")
    (landed,) = [o["Key"] for o in listed.get("Contents", [])]
    body = s3_standin["client"].get_object(Bucket=s3_standin["bucket"], Key=landed)["Body"].read().decode()
    assert body.splitlines()[0] == "id,customer,amount,ordered_on" and len(body.splitlines()) == 7
    conn = connect(airflow_settings["warehouse_dsn"])  # load read that file back from S3 into the warehouse
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM raw_orders WHERE ordered_on = %s", (landed.rsplit("/", 1)[1][:-4],))
            assert cur.fetchone()[0] == 6
    finally:
        conn.close()
