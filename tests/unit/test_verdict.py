"""airstack.verdict: what a count of checks adds up to."""

from __future__ import annotations

import pytest

from airstack import verdict as v
from airstack.errors import ConfigError


def test_lacking_is_recognised_again_in_a_pytest_skip_reason():
    reason = v.lacking("official-chart", "no network to https://airflow.apache.org")
    assert v.capability_of(reason) == "official-chart"
    assert v.capability_of(f"Skipped: {reason}") == "official-chart"
    assert v.capability_of("needs the moon") is None


def test_an_unknown_capability_is_refused():
    with pytest.raises(ValueError, match="unknown capability 'moon'"):
        v.lacking("moon", "x")


@pytest.mark.parametrize(("tally", "require", "word"), [
    (v.Tally(passed=3), (), v.OK),
    (v.Tally(passed=3, failed=1), (), v.FAILED),
    (v.Tally(passed=3, skipped=1, skip_reasons={"by design": 1}), (), v.OK),
    (v.Tally(passed=3, lacking={v.lacking("docker", "no daemon"): 2}), (), v.PARTIAL),
    (v.Tally(passed=3, lacking={v.lacking("docker", "no daemon"): 2}), ("docker",), v.INCOMPLETE),
    (v.Tally(passed=3, not_run={"setup failed: PostgresUnavailableError": 4}), (), v.INCOMPLETE),
    (v.Tally(failed=1, not_run={"setup failed": 4}), (), v.FAILED),
    (v.Tally(), (), v.INCOMPLETE),  # nothing counted: nothing was checked
], ids=["all-passed", "one-failed", "skipped-by-design", "lacks-docker", "lacks-required", "setup-failed",
        "failed-wins", "nothing-ran"])
def test_verdict(tally, require, word):
    assert v.verdict(tally, require) == word
    assert v.exit_code(word) == (0 if word in (v.OK, v.PARTIAL) else 1)


def test_skips_are_sorted_into_capabilities_and_design():
    tally = v.Tally(passed=1)
    tally.add_skip(v.lacking("docker", "no daemon"), 2)
    tally.add_skip("fails to import: see test_dag_file")
    tally.add_not_run("setup failed: X")
    assert tally.counts() == "1 passed, 1 skipped, 3 could not run"
    assert tally.reasons() == ["2 × could not run, lacks docker: no daemon",
                               "1 × could not run: setup failed: X",
                               "1 × skipped: fails to import: see test_dag_file"]
    merged = tally.merge(tally)
    assert (merged.passed, merged.skipped, merged.lacking) == (2, 2, {v.lacking("docker", "no daemon"): 4})


def test_required_reads_the_environment():
    assert v.required({}) == set()
    assert v.required({v.REQUIRE_ENV: "official-chart"}) == {"official-chart"}
    assert v.required({v.REQUIRE_ENV: "all"}) == set(v.CAPABILITIES)
    with pytest.raises(ConfigError, match="AIRSTACK_REQUIRE: unknown capability moon"):
        v.required({v.REQUIRE_ENV: "moon"})


def test_a_skip_that_says_it_could_not_run_is_counted_so():
    tally = v.Tally()
    tally.add_skip(f"Skipped: {v.could_not_run('Postgres (embedded) did not start')}")
    assert (tally.skipped, tally.not_run) == (0, {"Postgres (embedded) did not start": 1})
    assert v.verdict(tally) == v.INCOMPLETE


def test_could_not_run_is_recognised_again_in_a_pytest_failure():
    message = v.could_not_run("harness: the worker running it failed: BrokenProcessPool")
    assert v.not_run_reason(message) == "harness: the worker running it failed: BrokenProcessPool"
    assert v.not_run_reason(f"Failed: {message}\n\nmore") == "harness: the worker running it failed: BrokenProcessPool"
    assert v.not_run_reason("etl (dags/etl.py): task 'a' failed: could not run: x") is None
