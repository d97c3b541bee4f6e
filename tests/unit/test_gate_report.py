"""airstack.gate: report.py, pytest_tally's counting and lint's: what a lane checked, and its verdict."""

from __future__ import annotations

import argparse
import json

import pytest

from airstack.gate import lint, testrun
from airstack.gate import report as g
from airstack.gate.pytest_tally import count
from airstack.verdict import FAILED, INCOMPLETE, OK, PARTIAL, Tally, lacking

CHART = lacking("official-chart", "set AIRSTACK_OFFICIAL_CHART")
DOCKER = lacking("docker", "no Docker daemon answers")


def report(tally: Tally, empty_by_design: str = "", checked: str = "") -> dict:
    return json.loads(json.dumps({"tally": tally.as_dict(), "checked": checked, "empty_by_design": empty_by_design}))


def test_pytest_outcomes_count_per_test_and_per_reason():
    tally = count({"a": ("passed", ""), "b": ("failed", ""), "c": ("skipped", "by design"),
                   "d": ("skipped", CHART), "e": ("skipped", CHART), "f": ("not_run", "setup failed: X")},
                  ["failed to collect tests/x.py: ImportError"])
    assert (tally.passed, tally.failed, tally.skipped) == (1, 1, 1)
    assert tally.lacking == {CHART: 2}
    assert tally.not_run == {"setup failed: X": 1, "failed to collect tests/x.py: ImportError": 1}
    assert tally.counts() == "1 passed, 1 failed, 1 skipped, 4 could not run"


def test_a_failure_that_says_it_could_not_run_is_not_a_dag_failure():
    """The DAG-run harness's own failures (airstack.dagtools.runs) can only fail a test: they count as could not run."""
    from _pytest.reports import TestReport

    from airstack.gate.pytest_tally import outcome
    from airstack.verdict import could_not_run

    def failed(text: str) -> TestReport:
        return TestReport("t", ("t.py", 1, "t"), {}, "failed", f"Failed: {text}", "call")

    assert outcome(failed(could_not_run("harness: BrokenProcessPool"))) == ("not_run", "harness: BrokenProcessPool")
    assert outcome(failed("etl (dags/etl.py): task 'a' failed: ValueError")) == ("failed", "")


@pytest.mark.parametrize(("code", "tally", "by_design", "require", "word"), [
    (0, Tally(passed=3), "", (), OK),
    (1, Tally(passed=3, failed=1), "", (), FAILED),
    (0, Tally(passed=3, lacking={CHART: 18}), "", (), PARTIAL),
    (0, Tally(passed=3, lacking={CHART: 18}), "", ("official-chart",), INCOMPLETE),
    (1, Tally(passed=3, not_run={"setup failed: PostgresUnavailableError": 2}), "", (), INCOMPLETE),
    (5, Tally(), "", (), INCOMPLETE),  # no tests collected, not by design
    (0, Tally(), "nothing affected by the change since main", (), OK),
    (5, Tally(), "nothing affected by the change since main", (), INCOMPLETE),  # the exit says otherwise
    (2, Tally(passed=3), "", (), INCOMPLETE),  # interrupted with nothing failed
    (0, Tally(), "", (), INCOMPLETE),  # exit 0 and nothing counted: nothing was checked
], ids=["ok", "failed", "lacks-chart", "lacks-required-chart", "setup-error", "exit-5", "empty-by-design",
        "exit-5-despite-design", "interrupted", "nothing-counted"])
def test_a_lane_verdict_follows_its_counts_and_exit_code(code, tally, by_design, require, word):
    result = g.settle("charts", code, report(tally, by_design), require, pytest=True)
    assert result.word == word
    assert g.gate_exit_code([result]) == (0 if word in (OK, PARTIAL) else 1)


def test_exit_5_says_no_tests_were_collected():
    result = g.settle("dags", 5, report(Tally()), pytest=True)
    assert result.reasons == ["1 × could not run: no tests collected (pytest exit 5): the selection is empty"]


def test_a_lane_without_a_report_could_not_run():
    assert g.settle("lint", 0, None).word == INCOMPLETE
    assert g.settle("lint", 1, None).tally.not_run == {"the lane ended (exit 1) without saying what it checked": 1}
    assert g.settle("lint", None, None).tally.not_run == {"the lane did not finish": 1}


def test_a_report_that_does_not_read_is_none(tmp_path):
    assert g.read_report(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{")
    assert g.read_report(tmp_path / "bad.json") is None
    (tmp_path / "good.json").write_text(json.dumps(report(Tally(passed=1))))
    assert g.read_report(tmp_path / "good.json")["tally"]["passed"] == 1


def lanes() -> list[g.LaneResult]:
    return [g.settle("dags", 0, report(Tally(passed=23, skipped=2, skip_reasons={"runs elsewhere": 2})), pytest=True),
            g.settle("lint", 0, report(Tally(passed=5), checked="flake8 120 files")),
            g.settle("charts", 0, report(Tally(passed=41, lacking={CHART: 18})), pytest=True)]


def test_the_last_line_is_the_gate_verdict_with_counts_and_why():
    assert g.last_line(lanes()) == ("gate: partial: 69 passed, 2 skipped, 18 could not run "
                                    "(lacks official-chart: set AIRSTACK_OFFICIAL_CHART)")
    assert g.gate_exit_code(lanes()) == 0
    required = [g.settle("charts", 0, report(Tally(passed=41, lacking={CHART: 18})), ("official-chart",), True)]
    assert g.last_line(required).startswith("gate: incomplete: 41 passed, 18 could not run (lacks official-chart")
    assert g.gate_exit_code(required) == 1


def test_the_last_line_of_a_change_that_affects_nothing():
    nothing = "nothing affected by the change since main"
    results = [g.settle(name, 0, report(Tally(), nothing), pytest=True) for name in ("dags", "charts")]
    assert g.last_line(results) == f"gate: ok: {nothing}"
    results.append(g.settle("lint", 0, report(Tally(passed=1, skipped=4))))
    assert g.last_line(results) == f"gate: ok: 1 passed, 4 skipped; dags: {nothing}; charts: {nothing}"


def test_table_rows_show_the_word_counts_and_each_reason():
    dags, lint_row, charts = (g.row(lane) for lane in lanes())
    assert dags[:2] == ("dags", "[green]ok[/]")
    assert dags[3].splitlines()[0] == "[bold]23 passed, 2 skipped[/]"
    assert "[dim]2 × skipped: runs elsewhere[/]" in dags[3].splitlines()
    assert "[dim]flake8 120 files[/]" in lint_row[3].splitlines()
    assert charts[:2] == ("charts", "[yellow]partial[/]")
    assert charts[3].splitlines() == ["[bold]41 passed, 18 could not run[/]", f"[yellow]18 × {CHART}[/]"]
    nothing = "nothing affected by the change since main"
    empty = g.row(g.settle("charts", 0, report(Tally(), nothing), pytest=True))
    assert empty[1] == "[green]ok[/]"
    assert empty[3].splitlines() == ["[bold]nothing to check[/]", f"[yellow]{nothing}[/]"]


def test_the_bench_record_keeps_seconds_and_exit_codes_and_adds_counts():
    results = lanes()
    results[2].seconds, results[2].code = 4.56, 0
    record = g.bench_record(results)
    assert record["charts"] == {"seconds": 4.56, "exit_code": 0, "result": PARTIAL, "passed": 41, "failed": 0,
                                "skipped": 0, "could_not_run": 18}
    assert set(record) == {"dags", "lint", "charts"}


def test_lint_counts_each_linter_and_says_why_one_did_not_run():
    counts, checked = lint.tally({"flake8": (120, 0), "yamllint": (0, None), "image pins": (3, 1)}, "main")
    assert (counts.passed, counts.failed, counts.skip_reasons) == (1, 1, {"nothing it reads changed since main": 1})
    assert checked == "flake8 120 files, image pins 3 images"
    counts, _ = lint.tally({"flake8": (0, None)}, None)  # everything asked for, and no file: not a pass
    assert counts.not_run == {"flake8: nothing to lint": 1}


@pytest.mark.parametrize(("given", "dags_has", "charts_has"), [
    (["-k", "etl"], ["-k", "etl"], []),  # README: pytest arguments go to the DAG lane
    (["tests/deploy/charts/test_platform_chart.py", "-k", "oidc"], [], ["-k", "oidc"]),
    (["tests/dags/test_dag_integrity.py", "tests/deploy/charts/test_platform_chart.py", "-x"], ["-x"], ["-x"]),
])
def test_pytest_options_reach_only_the_lanes_they_are_for(tmp_path, given, dags_has, charts_has):
    dags, side = testrun.gate_lanes(argparse.Namespace(changed_since=None), given, tmp_path)
    charts = side[-1]
    for lane, has in ((dags, dags_has), (charts, charts_has)):
        assert [a for a in lane.argv if a in ("-k", "etl", "oidc", "-x")] == has, lane.argv
        assert f"--tally={tmp_path / lane.name}.json" in lane.argv


def test_an_unknown_required_capability_is_refused_before_any_lane_starts(monkeypatch, capsys):
    from airstack.cli import run_main

    started = []
    monkeypatch.setattr(testrun, "run_lanes", lambda *lanes: started.append(lanes))
    monkeypatch.setenv("AIRSTACK_REQUIRE", "official-chart,moon")
    assert run_main(testrun.main, ["gate"]) == 1
    assert capsys.readouterr().err.startswith("error: AIRSTACK_REQUIRE: unknown capability moon")
    assert started == []


def test_a_tally_survives_json_and_the_worst_word_wins():
    from airstack.verdict import worst

    tally = Tally(passed=2, failed=1, skipped=1, lacking={DOCKER: 2}, not_run={"setup failed: X": 1},
                  skip_reasons={"by design": 1})
    assert Tally.from_dict(json.loads(json.dumps(tally.as_dict()))) == tally
    assert (tally.could_not_run, tally.empty, Tally().empty) == (3, False, True)
    assert worst([OK, PARTIAL, OK]) == PARTIAL
    assert worst([PARTIAL, FAILED, INCOMPLETE]) == FAILED
    assert worst([]) == OK
