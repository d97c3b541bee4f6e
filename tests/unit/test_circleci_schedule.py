"""`.circleci/config.yml`'s triggers: no legacy trigger, and the nightly schedule of main that removes the previews
of merged branches (.circleci/schedules/previews-cleanup.json), read as CircleCI would (test_circleci.py).
"""

from __future__ import annotations

import json

from tests.unit.test_circleci import (BRANCH, MAIN, SCHEDULE_FILE, SCHEDULED, config, nox_calls, pipeline_values,
                                      workflow, workflows_run)

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = (".circleci/",)


def schedule() -> dict:
    return json.loads(SCHEDULE_FILE.read_text())


def test_no_legacy_triggers_anywhere():
    """CircleCI's `triggers:` schedules are being phased out: scheduled pipelines only."""
    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    assert "triggers" not in set(keys(config()))


def test_the_schedule_definition_is_a_nightly_pipeline_of_main():
    """.circleci/schedules/previews-cleanup.json is the body of POST /project/{slug}/schedule (API v2)."""
    body = schedule()
    assert set(body) <= {"name", "description", "attribution-actor", "parameters", "timetable"}
    assert {"name", "attribution-actor", "parameters", "timetable"} <= set(body), "the API's required fields"
    assert body["attribution-actor"] in ("current", "system")
    assert body["parameters"] == {"branch": MAIN}, "main's config, no pipeline parameter (dags-only stays false)"
    timetable = body["timetable"]
    assert timetable["per-hour"] == 1 and len(timetable["hours-of-day"]) == 1, "once a night"
    assert all(0 <= h <= 23 for h in timetable["hours-of-day"])
    assert set(timetable["days-of-week"]) == {"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}


def test_previews_of_merged_branches_are_removed_by_their_schedule_only():
    name = schedule()["name"]
    scheduled = pipeline_values(schedule()["parameters"]["branch"], "scheduled_pipeline", name)
    assert workflows_run(scheduled) == {SCHEDULED}, "a scheduled pipeline runs the cleanup, and nothing else"
    assert name in json.dumps(config()["workflows"][SCHEDULED]["when"]), "the schedule's name is the condition's"
    for values in (pipeline_values(MAIN), pipeline_values(BRANCH), pipeline_values(MAIN, "api", dags_only=True),
                   pipeline_values(MAIN, "api"), pipeline_values(MAIN, "scheduled_pipeline", "another-schedule"),
                   pipeline_values(BRANCH, "scheduled_pipeline", name)):
        assert SCHEDULED not in workflows_run(values), f"the cleanup runs on {values}"
    assert not workflows_run(pipeline_values(MAIN, "scheduled_pipeline", "another-schedule")), \
        "another schedule of main would deploy: no workflow but the cleanup runs on a schedule"
    jobs = workflow(SCHEDULED)
    assert list(jobs) == ["destroy-merged-previews"]
    assert nox_calls("destroy-merged-previews", MAIN) == [("destroy", ("integration", "--merged", "--yes"))]
    assert jobs["destroy-merged-previews"]["context"] == "airflow-integration", "integration's credentials only"
