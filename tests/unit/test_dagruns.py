"""airstack.dagtools.runs' pure parts: the failure message, the log tail, where an exception came from."""

from __future__ import annotations

from pathlib import Path

from airstack.dagtools.runs import DagOutcome, TaskFailure, error_origin, explain, log_tail


def test_the_first_line_names_the_root_cause():
    tasks = {"a": "success", "b": "failed", "c": "upstream_failed"}
    outcome = DagOutcome("etl", "dags/etl.py", state="failed", tasks=tasks,
                         expected_tasks=["a", "b", "c"], log_file="/logs/etl.log",
                         failures=[TaskFailure("b", "failed", "KeyError: 'x'", "dags/etl.py, line 9, in b", ["boom"]),
                                   TaskFailure("c", "upstream_failed")])
    lines = explain(outcome).splitlines()
    assert lines[0] == "etl (dags/etl.py): task 'b' failed: KeyError: 'x'"
    assert "    at dags/etl.py, line 9, in b" in lines and "    | boom" in lines
    assert "  task 'c' upstream_failed" in lines and lines[-1] == "  whole log: /logs/etl.log"
    assert not outcome.ok


def test_a_run_that_could_not_start_says_why():
    outcome = DagOutcome("etl", "dags/etl.py", error="dag.test() raised X", expected_tasks=["a"])
    assert explain(outcome).splitlines() == ["etl (dags/etl.py): dag.test() raised X"]


def test_tasks_that_never_ran_are_named():
    outcome = DagOutcome("etl", "dags/etl.py", state="success", tasks={"a": "success"}, expected_tasks=["a", "b"])
    assert not outcome.ok and "  tasks that never ran: b" in explain(outcome).splitlines()


def test_a_skipped_dag_is_ok():
    assert DagOutcome("k8s", "dags/k8s.py", skip="needs Docker").ok


def test_log_tail_keeps_the_dag_folders_frames_only(tmp_path):
    folder = tmp_path / "dags"
    text = "\n".join([
        "\x1b[31mstarting\x1b[0m", "", "Traceback (most recent call last):",
        '  File "/venv/airflow/sdk/bases/operator.py", line 462, in wrapper',
        "    return func(self, *args, **kwargs)", "           ^^^^^^^^^^^^^",
        f'  File "{folder}/etl.py", line 9, in load', "    raise KeyError('x')",
        "KeyError: 'x'",
    ])
    assert log_tail(text, dags_folder=folder) == [
        "starting", "Traceback (most recent call last):", f'  File "{folder}/etl.py", line 9, in load',
        "    raise KeyError('x')", "KeyError: 'x'"]
    assert log_tail(text, lines=2) == ["    raise KeyError('x')", "KeyError: 'x'"]


def test_error_origin_is_the_dag_files_deepest_frame(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "etl.py").write_text("def load(rows):\n    return rows['missing']\n")
    namespace: dict = {}
    exec(compile((folder / "etl.py").read_text(), str(folder / "etl.py"), "exec"), namespace)  # noqa: S102
    try:
        namespace["load"]({})
    except KeyError as exc:
        assert error_origin(exc, folder) == "dags/etl.py, line 2, in load"
        assert error_origin(exc, Path("/elsewhere")).endswith("etl.py, line 2, in load")
