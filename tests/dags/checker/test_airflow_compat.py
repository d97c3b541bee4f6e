"""The contract of airstack.airflow_compat with the Airflow installed here: each capability does its job.

tests/integration/test_airflow_contract.py runs this file on every release airstack.airflow_compat.RELEASES
lists (with test_airflow_seam.py and test_dag_run_failures.py, the DAG-run harness's part of the seam).
"""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import pytest

from airstack import airflow_compat, paths, proc

FILES = {
    "lookups.py": """
        from airflow.sdk import DAG, Variable
        from airflow.sdk.bases.hook import BaseHook
        for lookup in (lambda: Variable.get("api_token"), lambda: BaseHook.get_connection("warehouse_db")):
            try:
                lookup()
            except Exception:
                pass
        dag = DAG("looked_up", schedule=None)
    """,
    "made.py": """
        import pendulum
        from airflow.sdk import DAG, asset
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG("explicit", schedule=None, catchup=False, params={"n": 3},
                 start_date=pendulum.datetime(2024, 1, 1)) as dag:
            EmptyOperator(task_id="a", owner="team") >> EmptyOperator(task_id="b")

        @asset(schedule=None)
        def orders():
            return 1
    """,
    "broken.py": "from airflow.sdk import DAG\nraise ValueError('broken on purpose')\n",
    "helper.py": "VALUE = 1\n",  # no DAG in it: the safe-mode heuristic passes it over
    "ignored.py": "from airflow.sdk import DAG\ndag = DAG('ignored', schedule=None)\n",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compat") / "dags"
    root.mkdir()
    for name, text in FILES.items():
        (root / name).write_text(textwrap.dedent(text))
    (root / ".airflowignore").write_text("ignored\\.py\n")
    return root


def parse(folder: Path, name: str):
    bag = airflow_compat.new_dagbag(folder)
    return airflow_compat.process_file(bag, folder / name, logging.getLogger("test.compat"))


def test_lookups_at_parse_time_are_seen_with_their_key_and_can_be_refused(folder):
    seen = []

    def refuse(kind, what, key):
        seen.append((kind, key))
        raise PermissionError(f"{what}({key!r}) refused")

    undo = airflow_compat.watch_lookups(refuse)
    try:
        dags, errors = parse(folder, "lookups.py")
    finally:
        undo()
    assert seen == [("variable", "api_token"), ("connection", "warehouse_db")]
    assert [d.dag_id for d in dags] == ["looked_up"] and errors == {}
    seen.clear()
    parse(folder, "lookups.py")
    assert seen == []  # undone


def test_each_dag_call_is_seen_with_its_keywords_and_whether_asset_made_it(folder):
    seen = {}
    undo = airflow_compat.watch_dags(lambda dag_id, given, by_asset: seen.update({dag_id: (given, by_asset)}))
    try:
        dags, errors = parse(folder, "made.py")
    finally:
        undo()
    assert errors == {} and {d.dag_id for d in dags} == {"explicit", "orders"}
    assert seen["explicit"] == ({"schedule", "catchup", "params", "start_date"}, False)
    assert seen["orders"][1] is True


def test_a_file_that_does_not_import_is_an_import_error_and_the_folder_is_listed_as_airflow_lists_it(folder):
    dags, errors = parse(folder, "broken.py")
    assert dags == [] and "broken on purpose" in "".join(errors.values())
    listed = {Path(p).name for p in airflow_compat.dag_files(folder)}
    assert "ignored.py" not in listed and {"lookups.py", "made.py", "broken.py"} <= listed
    assert not airflow_compat.might_contain_dag(folder / "helper.py")
    assert airflow_compat.might_contain_dag(folder / "made.py")
    collected = airflow_compat.new_dagbag(folder, folder / "made.py")
    assert set(collected.dags) == {"explicit", "orders"} and not collected.import_errors


def test_a_dag_serializes_as_the_dag_processor_stores_it(folder):
    dag = next(d for d in parse(folder, "made.py")[0] if d.dag_id == "explicit")
    data = airflow_compat.serialize_dag(dag)
    assert data["dag_id"] == "explicit"
    assert sorted(t["__var"]["task_id"] for t in data["tasks"]) == ["a", "b"]


def test_a_template_context_renders_with_the_parts(folder):
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.python import PythonOperator

    dag = next(d for d in parse(folder, "made.py")[0] if d.dag_id == "explicit")
    task = dag.get_task("a")
    keys, macros, params = airflow_compat.template_parts(task)
    assert {"ds", "ti", "params", "macros", "dag_run"} <= keys
    assert macros.ds_add("2024-01-01", 1) == "2024-01-02" and params["n"] == 3
    with DAG("mapped", schedule=None):
        first = PythonOperator(task_id="first", python_callable=lambda: [1])
        mapped = BashOperator.partial(task_id="each").expand(bash_command=first.output)
    assert airflow_compat.is_mapped(mapped) and not airflow_compat.is_mapped(first)
    assert isinstance(first.output, airflow_compat.run_time_reference())


def test_a_task_policy_applies_while_registered_and_not_after(folder):
    undo = airflow_compat.register_task_policy(lambda task: setattr(task, "owner", "policy"))
    try:
        dag = next(d for d in parse(folder, "made.py")[0] if d.dag_id == "explicit")
    finally:
        undo()
    assert {t.owner for t in dag.tasks} == {"policy"}
    dag = next(d for d in parse(folder, "made.py")[0] if d.dag_id == "explicit")
    assert dag.get_task("a").owner == "team"


@pytest.mark.postgres
def test_the_metadata_database_migrates_writes_reads_and_reconnects(airflow_db):
    from airflow.models.variable import Variable
    from sqlalchemy import delete, inspect, select

    # (migrated by the fixture through airstack.airflow_env.migrate, the one way a database is migrated)
    assert {"connection", "variable", "slot_pool"} <= set(inspect(airflow_compat.engine()).get_table_names())
    token = airflow_compat.fernet().encrypt(b"value")
    assert airflow_compat.fernet().decrypt(token) == b"value"
    with airflow_compat.session() as session:
        session.add(Variable(key="compat_probe", val="written"))
    airflow_compat.disconnect()
    airflow_compat.reconfigure_orm()
    with airflow_compat.session() as session:
        stored = session.scalars(select(Variable).where(Variable.key == "compat_probe")).one()
        assert stored.val == "written" and stored.is_encrypted  # through Airflow's Fernet
        session.execute(delete(Variable).where(Variable.key == "compat_probe"))


def test_the_cli_runs_in_this_process(monkeypatch, capsys):
    from importlib.metadata import version

    monkeypatch.setattr(sys, "argv", ["airflow", "version"])
    try:
        airflow_compat.run_cli()
    except SystemExit as stop:
        assert not stop.code
    assert capsys.readouterr().out.strip() == version("apache-airflow-core")


def test_without_the_sdk_internals_its_public_entry_points_are_watched():
    """As on a release without ``_get_variable``/``_get_connection``: the SDK's Variable.get and Connection.get."""
    code = textwrap.dedent("""
        import airflow.sdk.execution_time.context as context
        del context._get_variable, context._get_connection
        from airflow.sdk import Connection, Variable
        from airstack import airflow_compat
        seen = []
        def refuse(kind, what, key):
            seen.append((kind, what, key))
            raise PermissionError(key)
        airflow_compat.watch_lookups(refuse)
        for lookup in (lambda: Variable.get("api_token"), lambda: Connection.get("warehouse_db")):
            try:
                lookup()
            except PermissionError:
                pass
        print(seen)
    """)
    result = proc.run([sys.executable, "-c", code], env={"PYTHONPATH": str(paths.repo_root())}, check=False)
    assert result.stdout.strip().splitlines()[-1:] == [
        "[('variable', 'Variable.get', 'api_token'), ('connection', 'connection lookup', 'warehouse_db')]"
    ], result.stdout + result.stderr
