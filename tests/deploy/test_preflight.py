"""The deploy plan's checks (airstack/deploy/preflight.py): passed, failed, or could not run, in verdict's words."""

from __future__ import annotations

import pytest

from airstack.deploy import preflight, release
from airstack.deploy.guards import GuardError
from airstack.errors import DockerRefusedError


def test_a_plan_goes_on_past_a_check_that_could_not_run_and_ends_incomplete(capsys):
    checks = preflight.Checks("production", dry_run=True)
    with checks.step("the records") as first:
        first.problems = []
    with checks.step("the registry") as second:
        raise DockerRefusedError("asking the registry for r/a:t: the Docker daemon refused (connection refused)")
    assert first.ran and not second.ran
    out = capsys.readouterr().out
    assert "check the records: passed" in out
    assert "check the registry: could not run: asking the registry for r/a:t" in out
    assert checks.word() == "incomplete"
    summary = checks.summary()
    assert summary.startswith("plan: incomplete (1 passed, 1 could not run)\n  1 × could not run: the registry")


def test_a_deploy_stops_at_a_check_that_could_not_run():
    checks = preflight.Checks("production", dry_run=False)
    with pytest.raises(GuardError, match=r"^production: the check the records could not run \(s3://b/k: denied\): "
                                         "nothing was changed"):
        with checks.step("the records"):
            raise release.RecordUnreadableError("s3://b/k: denied")


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_failed_check_stops_plan_and_deploy_with_its_lines(dry_run, capsys):
    checks = preflight.Checks("production", dry_run=dry_run)
    with pytest.raises(GuardError) as raised:
        with checks.step("the registry") as step:
            step.problems = ["image a: retagged", "image b: retagged"]
    assert str(raised.value) == "image a: retagged\nimage b: retagged"
    assert "check the registry: failed" in capsys.readouterr().out and checks.word() == "failed"


def test_an_error_that_is_a_finding_is_not_swallowed():
    """Only what keeps a check from asking counts as could not run; any other error propagates."""
    checks = preflight.Checks("production", dry_run=True)
    with pytest.raises(ValueError):
        with checks.step("the records"):
            raise ValueError("a bug")
    assert checks.tally.not_run == {}


def test_registry_problems_name_the_image_both_digests_and_what_to_do():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    refs = {"airflow": "reg/airflow:t1", "etl": "reg/etl:t2", "new": "reg/new:t3"}
    problems = release.registry_problems("production", "integration", refs, {"airflow": a, "etl": a, "new": a},
                                         {"airflow": b, "etl": a, "new": None})
    assert problems == [f"image airflow: reg/airflow:t1 is {b} in production's registry, but integration ran {a}: "
                        "the tag was pushed again since; delete that tag from production's registry (the deploy then "
                        "copies integration's image by digest)"]
