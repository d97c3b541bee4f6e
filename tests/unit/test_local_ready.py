"""`up`'s readiness (every DAG file parsed since the processor started), its summary, and ports per checkout."""

from __future__ import annotations

import itertools
import json
import socket
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airstack.localenv import ports, ready
from airstack.localenv.config import LocalConfig

SINCE = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
BEFORE, AFTER = "2026-11-30T02:59:59Z", "2026-11-30T03:00:02.5+00:00"
SYNTAX_TRACE = """Traceback (most recent call last):
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/repo/dags/broken.py", line 7
    def oops(:
             ^
SyntaxError: invalid syntax"""
NAME_TRACE = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/airflow/dag_processing/importers/python_importer.py", line 90, in parse
    loader.exec_module(new_module)
  File "/repo/dags/team/uses_helper.py", line 4, in <module>
    from helpers import build
  File "/repo/dags/helpers.py", line 12, in <module>
    raise ValueError("no such image: etl:latest")
ValueError: no such image: etl:latest"""


def test_error_line_points_at_the_files_own_line_and_the_exception():
    assert ready.error_line("broken.py", SYNTAX_TRACE) == "dags/broken.py:7: SyntaxError: invalid syntax"
    # The deepest frame *in the file* (not the helper it imports) is where the user looks first.
    assert ready.error_line("team/uses_helper.py", NAME_TRACE) == \
        "dags/team/uses_helper.py:4: ValueError: no such image: etl:latest"
    assert ready.error_line("x.py", "ImportError: nothing else") == "dags/x.py: ImportError: nothing else"


def test_classify_counts_only_what_was_parsed_since_the_processor_started():
    files = ["a.py", "b.py", "broken.py", "old.py", "stale_error.py"]
    dags = [{"dag_id": "a2", "relative_fileloc": "a.py", "last_parsed_time": AFTER},
            {"dag_id": "a1", "relative_fileloc": "a.py", "last_parsed_time": AFTER},
            {"dag_id": "b", "relative_fileloc": "b.py", "last_parsed_time": AFTER},
            {"dag_id": "old", "relative_fileloc": "old.py", "last_parsed_time": BEFORE}]
    errors = [{"filename": "broken.py", "timestamp": AFTER, "stack_trace": SYNTAX_TRACE},
              {"filename": "stale_error.py", "timestamp": BEFORE, "stack_trace": NAME_TRACE}]
    state = ready.classify(files, dags, errors, SINCE)
    assert state.dags == {"a.py": ["a1", "a2"], "b.py": ["b"]}
    assert state.errors == {"broken.py": SYNTAX_TRACE}
    assert state.pending == ["old.py", "stale_error.py"]


def test_an_error_wins_over_dags_of_an_earlier_parse():
    dags = [{"dag_id": "a", "relative_fileloc": "a.py", "last_parsed_time": AFTER}]
    errors = [{"filename": "a.py", "timestamp": AFTER, "stack_trace": SYNTAX_TRACE}]
    assert ready.classify(["a.py"], dags, errors, SINCE).errors == {"a.py": SYNTAX_TRACE}


def test_summary_lists_dags_errors_and_files_without_dags():
    state = ready.ParseState(dags={"a.py": ["a1", "a2"], "b.py": ["b"]}, errors={"broken.py": SYNTAX_TRACE},
                             empty=["notes.py"])
    assert ready.summary(state) == [
        "3 DAGs from 2 files; 1 file failed to import:",
        "  dags/broken.py:7: SyntaxError: invalid syntax",
        "  dags/notes.py: defines no DAG (list it in dags/.airflowignore if it is a helper)",
    ]
    assert ready.summary(ready.ParseState(dags={"a.py": ["a"]})) == ["1 DAG from 1 file; no import errors"]


NO_DAG, HAS_DAG = {"dags": [], "error": None}, {"dags": ["slow"], "error": None}


def test_only_a_file_whose_own_parse_finds_nothing_defines_no_dag():
    dags = [{"dag_id": "a", "relative_fileloc": "a.py", "last_parsed_time": AFTER}]
    parsed = {"helper.py": NO_DAG, "slow.py": HAS_DAG, "broken.py": {"dags": [], "error": SYNTAX_TRACE}}
    state = ready.decide(["a.py", "helper.py", "slow.py", "broken.py", "unasked.py"], dags, [], SINCE, parsed)
    assert state.dags == {"a.py": ["a"]} and state.empty == ["helper.py"]
    # A DAG or an error found by the parse: pending until the DAG processor has recorded it. Not parsed: pending.
    assert state.pending == ["slow.py", "broken.py", "unasked.py"]
    # Once the processor records them, what it recorded counts (its DAGs, its error), not the parse's answer.
    recorded = dags + [{"dag_id": "slow", "relative_fileloc": "slow.py", "last_parsed_time": AFTER}]
    errors = [{"filename": "broken.py", "timestamp": AFTER, "stack_trace": NAME_TRACE}]
    state = ready.decide(["a.py", "slow.py", "broken.py"], recorded, errors, SINCE, parsed)
    assert (state.dags, state.errors, state.pending) == ({"a.py": ["a"], "slow.py": ["slow"]},
                                                         {"broken.py": NAME_TRACE}, [])
    # An idle processor is no evidence: without a parse's answer, nothing is called empty.
    assert ready.decide(["helper.py"], [], [], SINCE, {}).pending == ["helper.py"]


def test_wait_parsed_asks_once_and_names_what_the_parse_found_in_the_files_left(monkeypatch):
    parsed = ([{"dag_id": "a", "relative_fileloc": "a.py", "last_parsed_time": AFTER}], [])
    answers = itertools.chain([([], [])], itertools.repeat(parsed))  # nothing yet, then a.py only
    monkeypatch.setattr(ready, "_fetch", lambda url: next(answers))
    asked = []

    def parse(files):
        asked.append(files)
        return {"helper.py": NO_DAG}

    state = ready.wait_parsed("http://x", ["a.py", "helper.py"], SINCE, 30, lambda: None, lambda: True, parse,
                              interval=0)
    assert state.dags == {"a.py": ["a"]} and state.empty == ["helper.py"] and asked == [["helper.py"]]
    # The DAG processor never records the slow file: the timeout names it, and what its own parse found.
    monkeypatch.setattr(ready, "_fetch", lambda url: parsed)
    with pytest.raises(ready.AirstackError, match=r"has not parsed slow.py \(it defines slow\) after 0.2 s"):
        ready.wait_parsed("http://x", ["a.py", "slow.py"], SINCE, 0.2, lambda: None, lambda: True,
                          lambda files: {"slow.py": HAS_DAG}, interval=0.01)
    # A processor that never looks idle (a container's health checks) is asked about after ASK_ANYWAY only.
    with pytest.raises(ready.AirstackError, match=r"has not parsed helper.py after 0.05 s"):
        ready.wait_parsed("http://x", ["a.py", "helper.py"], SINCE, 0.05, lambda: None, lambda: False,
                          lambda files: {"helper.py": NO_DAG}, interval=0.01)
    monkeypatch.setattr(ready, "ASK_ANYWAY", 0)
    assert ready.wait_parsed("http://x", ["a.py", "helper.py"], SINCE, 30, lambda: None, lambda: False,
                             lambda files: {"helper.py": NO_DAG}, interval=0.01).empty == ["helper.py"]


def test_a_parse_that_fails_fails_up(monkeypatch):
    monkeypatch.setattr(ready, "_fetch", lambda url: ([{"dag_id": "a", "relative_fileloc": "a.py",
                                                        "last_parsed_time": AFTER}], []))

    def parse(files):
        raise ready.AirstackError("could not parse helper.py with Airflow (exit 1): boom")

    with pytest.raises(ready.AirstackError, match="could not parse helper.py"):
        ready.wait_parsed("http://x", ["a.py", "helper.py"], SINCE, 30, lambda: None, lambda: True, parse,
                          interval=0.01)


# --------------------------------------------------------------------- ports per checkout --
@pytest.fixture()
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for variable in ("AIRSTACK_LOCAL_API_PORT", "AIRSTACK_LOCAL_POSTGRES_PORT"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def _checkout(base: Path, name: str) -> LocalConfig:
    (base / name).mkdir()
    return LocalConfig.from_env(base / name, {})


def test_two_checkouts_get_different_ports_and_keep_them(registry):
    first = ports.claim(_checkout(registry, "a"), {})
    second = ports.claim(_checkout(registry, "b"), {})
    assert {first.api_port, first.postgres_port}.isdisjoint({second.api_port, second.postgres_port})
    # Recorded: the next commands of each checkout use the same ports, the environment still wins.
    assert ports.recorded(LocalConfig.from_env(registry / "b", {}), {}).api_port == second.api_port
    override = ports.recorded(LocalConfig.from_env(registry / "b", {}), {"AIRSTACK_LOCAL_API_PORT": "1"})
    assert override.api_port == LocalConfig.from_env(registry / "b", {}).api_port  # the env's, not the record's
    ports.forget(second)
    assert json.loads(next(ports.registry().glob("*.json")).read_text())["root"] == str(registry / "a")


def test_a_taken_port_names_the_checkout_that_holds_it(registry):
    first = ports.claim(_checkout(registry, "a"), {})
    second = _checkout(registry, "b")
    assert ports.taken(second, first.api_port, "the api-server", "AIRSTACK_LOCAL_API_PORT") == (
        f"port {first.api_port} on 127.0.0.1 is taken by the local environment of {registry / 'a'} "
        "(the api-server needs it): `nox -s down` there, or set AIRSTACK_LOCAL_API_PORT here")
    assert ports.taken(second, 1, "Postgres", "V") == \
        "port 1 on 127.0.0.1 is taken: Postgres needs it; free it or set V"


def test_a_busy_port_is_skipped_and_a_gone_checkout_is_forgotten(registry, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(ports, "DEFAULTS", {"api_port": port, "postgres_port": port + 100})
        claimed = ports.claim(_checkout(registry, "a"), {})
    assert claimed.api_port > port
    gone = _checkout(registry, "gone")
    ports.claim(gone, {})
    gone.root.rmdir()
    assert [r["root"] for r in ports.others(_checkout(registry, "c"))] == [str(registry / "a")]
    assert len(list(ports.registry().glob("*.json"))) == 1  # the gone checkout's record was removed


def test_verbose_follower_prints_each_services_new_complete_lines(tmp_path, capsys):
    from airstack.localenv.env import LogFollower

    config = LocalConfig(tmp_path)
    config.logs.mkdir(parents=True)
    config.log_file("scheduler").write_text("from an earlier up\n")
    follow = LogFollower(config, ("scheduler", "triggerer"))
    with config.log_file("scheduler").open("a") as log:
        log.write("Starting the scheduler\nhalf a li")
    config.log_file("triggerer").write_text("Starting the triggerer\n")
    follow()
    with config.log_file("scheduler").open("a") as log:
        log.write("ne\n")
    follow()
    assert capsys.readouterr().out.splitlines() == [
        "scheduler | Starting the scheduler", "triggerer | Starting the triggerer", "scheduler | half a line"]


def test_an_env_already_up_is_summarised_from_what_the_api_shows(monkeypatch):
    dags = [{"dag_id": "a", "relative_fileloc": "a.py", "last_parsed_time": BEFORE},
            {"dag_id": "old", "relative_fileloc": "broken.py", "last_parsed_time": BEFORE}]
    errors = [{"filename": "broken.py", "timestamp": BEFORE, "stack_trace": SYNTAX_TRACE}]
    monkeypatch.setattr(ready, "_fetch", lambda url: (dags, errors))
    state = ready.current("http://x")
    assert state.dags == {"a.py": ["a"]} and state.errors == {"broken.py": SYNTAX_TRACE}


def test_every_page_of_a_collection_is_read():
    """The REST API caps a page at 100 items whatever `limit` asks: 157 DAGs are two pages."""
    import httpx

    from airstack.localenv.health import get_all

    items = [{"dag_id": f"generated_{number:03}"} for number in range(157)]

    def serve(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"dags": items[offset:offset + 100], "total_entries": len(items)})

    with httpx.Client(transport=httpx.MockTransport(serve), base_url="http://x") as client:
        assert get_all(client, "/dags", "dags", limit=1000) == items
