"""settings-diff --against URL: the file against a running api-server, values redacted, exit 1 on drift."""

from __future__ import annotations

import pytest

from tests.helpers import table_rows

pytestmark = pytest.mark.postgres


def test_drift_against_a_running_airflow(repo, restore_db, cli, api_server):
    assert cli("apply", "local", "--prune")[0] == 0
    code, out, _ = cli("diff", "local", "--against", api_server)
    assert code == 0 and "in sync" in out, out

    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:  # someone changes the running Airflow by hand
        session.scalars(select(Variable).where(Variable.key == "threshold")).one().val = "hand-set-value-4b1d"
        session.add(Connection(conn_id="hand_made", conn_type="http", host="example.com", password="hand-pw"))
    code, out, _ = cli("diff", "local", "--against", api_server)
    assert code == 1, out
    rows = {tuple(row) for row in table_rows(out)}
    assert ("variable", "threshold", "change", "value") in rows, out
    assert ("connection", "hand_made", "remove", "") in rows, out
    assert ("connection", "warehouse_db", "unchanged", "") in rows, out
    assert "hand-set-value-4b1d" not in out and "hand-pw" not in out and "s3cret-pw" not in out


def test_drift_target_unreachable_is_one_line(repo, cli):
    code, _, err = cli("diff", "local", "--against", "http://127.0.0.1:9")
    assert code == 1 and err.startswith("error: cannot read http://127.0.0.1:9/api/v2") and "Traceback" not in err
