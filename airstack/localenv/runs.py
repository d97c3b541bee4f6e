"""Trigger a DAG run through the REST API and follow it to its end state."""

from __future__ import annotations

import time

from rich.table import Table

from airstack.errors import AirstackError

FINISHED = {"success", "failed"}


def _client(api_url: str):
    import httpx

    return httpx.Client(base_url=f"{api_url}/api/v2", timeout=30)  # a loaded laptop answers slowly


def _wait_for_dag(client, dag_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/dags/{dag_id}")
        if response.status_code == 200:
            return
        time.sleep(0.5)
    errors = client.get("/importErrors").json().get("import_errors", [])
    hint = f"; import errors: {[e['filename'] for e in errors]}" if errors else ""
    raise AirstackError(f"DAG {dag_id!r} is not known to the local Airflow after {timeout:g} s{hint}")


def follow_run(api_url: str, dag_id: str, timeout: float, console) -> int:
    import httpx

    from airstack.localenv.health import health

    unhealthy = ", ".join(f"{c}: {s}" for c, s in health(api_url).items() if s != "healthy")
    if unhealthy:
        raise AirstackError(f"the local Airflow at {api_url} is not healthy ({unhealthy}): "
                            "`nox -s status`, `nox -s logs`, `nox -s restart`")
    try:
        with _client(api_url) as client:
            _wait_for_dag(client, dag_id, 60)
            client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
            created = client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
            created.raise_for_status()
            run_id = created.json()["dag_run_id"]
            console.print(f"{dag_id}: run {run_id} queued")
            deadline, state = time.monotonic() + timeout, "queued"
            while time.monotonic() < deadline:
                state = client.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
                if state in FINISHED:
                    break
                time.sleep(1)
            tasks = client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    except httpx.HTTPError as exc:
        raise AirstackError(f"the local Airflow at {api_url} does not answer ({type(exc).__name__}): "
                            "is it up? `nox -s status`") from None
    table = Table(title=f"{dag_id} {run_id}: {state}", title_justify="left")
    table.add_column("task")
    table.add_column("state")
    for ti in sorted(tasks, key=lambda t: t["task_id"]):
        table.add_row(ti["task_id"], str(ti["state"]))
    console.print(table)
    if state not in FINISHED:
        raise AirstackError(f"{dag_id} run {run_id} did not finish within {timeout:g} s (state {state})")
    return 0 if state == "success" else 1
