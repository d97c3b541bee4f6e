"""``dag-refresh``: while the local env (native) is up, an edited DAG file and a new one, until the REST API
shows them."""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from airstack.bench.common import write_result
from airstack.bench.local_env import local_env_runs


def _refresh_seconds(root: Path, env: dict[str, str]) -> dict:
    """While up: an edited DAG file, and a new one, until the REST API shows them."""
    import httpx

    url = f"http://127.0.0.1:{env['AIRSTACK_LOCAL_API_PORT']}/api/v2"

    def until(check: Callable[[], bool], timeout: float = 120) -> float:
        started = time.perf_counter()
        while not check():
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"dag-refresh: not visible after {timeout:g} s")
            time.sleep(0.1)
        return round(time.perf_counter() - started, 3)

    def tags(dag_id: str) -> set[str]:
        return {t["name"] for t in httpx.get(f"{url}/dags/{dag_id}", timeout=10).json().get("tags", [])}

    dag = root / "dags" / "example_bash_operator.py"
    marker = f"edited-{random.randrange(10**6)}"
    dag.write_text(dag.read_text().replace('tags=["example"]', f'tags=["example", "{marker}"]', 1))
    edited = until(lambda: marker in tags("example_bash_operator"))
    (root / "dags" / "bench_new_dag.py").write_text(NEW_DAG)
    added = until(lambda: httpx.get(f"{url}/dags/bench_new_dag", timeout=10).status_code == 200)
    return {"edited_seconds": edited, "added_seconds": added}


NEW_DAG = '''import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def bench_new_dag():
    @task
    def hello():
        print("hello")

    hello()


bench_new_dag()
'''


def run(args: argparse.Namespace) -> None:
    runs = local_env_runs("native", ("dags", "plugins", "settings"), after_up=_refresh_seconds)
    worst = max(runs["edited_seconds"], runs["added_seconds"])
    write_result("dag-refresh", worst, "s",
                 f"local env (native): an edited DAG file visible through the REST API in "
                 f"{runs['edited_seconds']:.1f} s, a new one in {runs['added_seconds']:.1f} s (goal <= 5 s)",
                 edited_seconds=runs["edited_seconds"], added_seconds=runs["added_seconds"], goal="<= 5 s")
