"""Used by test_sigkill_leaves_before_or_after_never_between: forks importers and SIGKILLs them.

Reads {"before": State, "after": State, "trials": N, "seed": S} on stdin (plaintext only on
the pipe); writes {"full_seconds", "outcomes": [{"delay", "state"}]} on stdout. The database
and Fernet key come from the environment, like every Airflow process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time


def main() -> None:
    config = json.load(sys.stdin)
    from airflow import settings as airflow_settings

    from airstack.settings import importer
    from airstack.settings.plan import State

    before, after = State(**config["before"]), State(**config["after"])
    importer.apply_state(before, prune=True)
    expected_before = importer.snapshot()
    started = time.perf_counter()
    importer.apply_state(after, prune=True)
    full = time.perf_counter() - started
    expected_after = importer.snapshot()
    rng = random.Random(config["seed"])
    outcomes = []
    for _ in range(config["trials"]):
        importer.apply_state(before, prune=True)
        airflow_settings.engine.dispose()  # the child opens its own connection
        pid = os.fork()
        if pid == 0:
            try:
                importer.apply_state(after, prune=True)
            finally:
                os._exit(0)
        delay = rng.uniform(0, full * 1.2)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        state = importer.snapshot()
        outcomes.append({"delay": round(delay, 4), "state": "before" if state == expected_before
                         else "after" if state == expected_after else "in-between"})
    importer.apply_state(before, prune=True)
    print("\n" + json.dumps({"full_seconds": full, "outcomes": outcomes}))  # the last line


if __name__ == "__main__":
    main()
