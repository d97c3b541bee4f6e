"""Waiting for health, never sleeping blindly: Postgres readiness and /api/v2/monitor/health."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed

from airstack.errors import AirstackError
from airstack.localenv.config import HEALTH_COMPONENTS

LOG_LINES = 15


class NotHealthyError(AirstackError):
    pass


def tail(path: Path, lines: int = LOG_LINES) -> str:
    if not path.is_file():
        return "    (no log yet)"
    text = path.read_text(errors="replace").rstrip().splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text)


def api_client(api_url: str):
    """The local Airflow's REST API (``/api/v2``); every request is an admin locally, so no token."""
    import httpx

    return httpx.Client(base_url=f"{api_url}/api/v2", timeout=30)  # a loaded laptop answers slowly


def get_all(client, path: str, key: str, **params) -> list[dict]:
    """Every item of a paged REST collection (``key``: its list): the API caps each page (100 by default,
    ``[api] maximum_page_limit``), whatever ``limit`` asks for."""
    items: list[dict] = []
    while True:
        page = client.get(path, params={**params, "offset": len(items)}).raise_for_status().json()
        items += page[key]
        if not page[key] or len(items) >= (page.get("total_entries") or 0):
            return items


def health(api_url: str) -> dict[str, str]:
    """Component -> status ("unreachable" for everything when the api-server does not answer)."""
    import httpx

    try:
        body = httpx.get(f"{api_url}/api/v2/monitor/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return {c: "unreachable" for c in HEALTH_COMPONENTS}
    return {c: (body.get(c) or {}).get("status", "missing") for c in HEALTH_COMPONENTS}


COMPONENT_SERVICE = {"metadatabase": "api-server", "scheduler": "scheduler", "triggerer": "triggerer",
                     "dag_processor": "dag-processor"}


def wait_healthy(api_url: str, timeout: float, check_alive: Callable[[], None], log_file: Callable[[str], Path],
                 interval: float = 0.2, on_poll: Callable[[], None] | None = None) -> dict[str, str]:
    """Poll until every component is healthy; ``check_alive`` raises as soon as a service has died;
    ``on_poll`` runs at each poll (--verbose shows the services' logs)."""
    last: dict[str, str] = {}

    @retry(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(timeout), wait=wait_fixed(interval))
    def poll() -> bool:
        if on_poll:
            on_poll()
        check_alive()
        last.update(health(api_url))
        return all(status == "healthy" for status in last.values())

    try:
        poll()
    except RetryError:
        bad = {c: s for c, s in last.items() if s != "healthy"}
        details = "\n".join(f"  {c}: {s}; last lines of {log_file(COMPONENT_SERVICE[c])}:\n"
                            f"{tail(log_file(COMPONENT_SERVICE[c]))}" for c, s in bad.items())
        raise NotHealthyError(f"not healthy after {timeout:g} s: {', '.join(bad)}\n{details}") from None
    return last
