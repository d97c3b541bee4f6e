"""`nox -s run`'s narration: each task's state change once, in order, and a retry's attempt and next start."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airstack.localenv import runs

FIVE_SECONDS = {"__type": "TimeDelta", "days": 0, "seconds": 5, "microseconds": 0}
TASK = {"task_id": "t", "retry_delay": FIVE_SECONDS, "retry_exponential_backoff": 0.0}
SEEN = datetime(2026, 12, 7, 21, 14, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Lines show the user's local time: UTC here."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def ti(state, try_number=1, max_tries=1, start="2026-12-07T21:13:40Z", end=None, task_id="t", map_index=-1,
       queued="2026-12-07T21:13:39Z"):
    return {"task_id": task_id, "map_index": map_index, "state": state, "try_number": try_number,
            "max_tries": max_tries, "start_date": start, "end_date": end, "queued_when": queued}


def test_a_task_that_fails_then_is_retried_is_told_step_by_step():
    narrator, told = runs.Narrator(), []
    polls = [[ti(None, 0, queued=None)], [ti("queued", start=None)], [ti("running")], [ti("running")],
             [ti("up_for_retry", end="2026-12-07T21:13:44.2Z")], [ti("up_for_retry", end="2026-12-07T21:13:44.2Z")],
             # queued again: the last attempt's end_date is still set, its queued_when is new
             [ti("queued", 2, end="2026-12-07T21:13:44.2Z", queued="2026-12-07T21:13:49.5Z")],
             [ti("running", 2, start="2026-12-07T21:13:50Z")],
             [ti("failed", 2, start="2026-12-07T21:13:50Z", end="2026-12-07T21:13:52Z")]]
    for tis in polls:
        told += narrator.lines(narrator.changes(tis), {"t": TASK}, SEEN)
    assert told == ["21:13:39 t queued (attempt 1 of 2)",
                    "21:13:40 t running (attempt 1 of 2)",
                    "21:13:44 t failed (attempt 1 of 2); retrying at 21:13:49",
                    "21:13:49 t queued (attempt 2 of 2)",
                    "21:13:50 t running (attempt 2 of 2)",
                    "21:13:52 t failed (attempt 2 of 2)"]
    # A state the API gives no time for: when it was asked for.
    assert narrator.lines(narrator.changes([ti("deferred", 2)]), {}, SEEN) == ["21:14:00 t deferred (attempt 2 of 2)"]


def test_an_attempt_over_between_two_looks_is_told_from_its_dates():
    narrator = runs.Narrator()
    narrator.changes([ti("queued", start=None)])
    # Between two looks the attempt ran and failed: its running (from start_date), then its end, in time order.
    ended = narrator.changes([ti("up_for_retry", start="2026-12-07T21:13:40Z", end="2026-12-07T21:13:41Z")])
    assert narrator.lines(ended, {"t": TASK}, SEEN) == ["21:13:40 t running (attempt 1 of 2)",
                                                        "21:13:41 t failed (attempt 1 of 2); retrying at 21:13:46"]
    # Failed, waited and started again between two looks: same state, a new attempt.
    assert narrator.lines(narrator.changes([ti("running", 2, start="2026-12-07T21:13:50Z")]), {}, SEEN) == \
        ["21:13:50 t running (attempt 2 of 2)"]
    both = [ti("success", 1, 0, start="2026-12-07T21:13:58Z", end="2026-12-07T21:13:59Z", task_id="late"),
            ti("running", 1, 0, start="2026-12-07T21:13:41Z", task_id="early", map_index=0)]
    assert narrator.lines(narrator.changes(both), {}, SEEN) == [
        "21:13:41 early[0] running", "21:13:58 late running", "21:13:59 late success"]


def test_the_next_attempt_follows_airflows_retry_delay():
    ended = datetime(2026, 12, 7, 21, 13, 44, tzinfo=timezone.utc)
    assert runs.retry_window(ended, 1, TASK) == (ended.replace(second=49),) * 2
    # Exponential backoff: the delay times the multiplier per try, plus Airflow's per-try spread (< the delay).
    backoff = {**TASK, "retry_exponential_backoff": 2.0}
    assert runs.retry_window(ended, 3, backoff) == (ended.replace(minute=14, second=4),
                                                    ended.replace(minute=14, second=23))
    assert runs.retry_window(ended, 1, {"retry_delay": None}) is None
    line = runs.narrate(ti("up_for_retry", 3, 4, end="2026-12-07T21:13:44Z"), backoff)[1]
    assert line == "t failed (attempt 3 of 5); retrying between 21:14:04 and 21:14:23"


# ------------------------------------------------------------------ a slow or silent API --
def _client(answers):
    """An httpx client on the run's REST paths: each answer is a dict (JSON) or an exception to raise."""
    import httpx

    def handler(request):
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, json=answer)

    return httpx.Client(base_url="http://127.0.0.1:9/api/v2", transport=httpx.MockTransport(handler))


def test_one_unanswered_poll_does_not_end_the_run(monkeypatch):
    """A loaded machine's api-server may miss one poll: `run` goes on following the run (issue 24's CI run
    failed an e2e test on one ReadTimeout while five other jobs shared its two cores)."""
    import httpx

    monkeypatch.setattr(runs.time, "sleep", lambda _s: None)
    timeout = httpx.ReadTimeout("timed out")
    client = _client([timeout, {"state": "success"}, {"task_instances": [ti("success")], "total_entries": 1}])
    state, tasks = runs._follow(client, "d", "r", timeout=60, console=None)
    assert state == "success" and [t["state"] for t in tasks] == ["success"]


def test_an_api_that_stays_silent_ends_the_run_with_its_error(monkeypatch):
    import httpx

    monkeypatch.setattr(runs.time, "sleep", lambda _s: None)
    monkeypatch.setattr(runs, "UNANSWERED", 0.0)
    with pytest.raises(httpx.ReadTimeout):
        runs._follow(_client([httpx.ReadTimeout("timed out")]), "d", "r", timeout=60, console=None)
