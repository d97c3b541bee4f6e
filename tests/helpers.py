"""Small helpers shared by tests."""

from __future__ import annotations

from contextlib import contextmanager


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table printed to ``output``, as lists of stripped cells."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in output.splitlines() if line.startswith("│")]


def python_base_or_skip() -> str:
    """The Python base image (``AIRSTACK_PYTHON_IMAGE``) on this daemon, pulled if it can be; else skip, saying why.

    Image builds and pod runs need it; a daemon that answers without it (no registry, the
    variable unset) is a reason to skip, not a failure: this machine lacks a usable Docker
    (:func:`airstack.verdict.lacking`), so the verdict reads ``partial``, not ``ok``.
    """
    import pytest

    from airstack.docker_client import optional_client
    from airstack.external_images import image, unobtainable
    from airstack.verdict import lacking

    if optional_client() is None:
        pytest.skip(lacking("docker", "no Docker daemon answers: the Python base image cannot be had"))
    missing = unobtainable("python")
    if missing is not None:
        pytest.skip(lacking("docker", f"{missing} (CI: local/python:3.11-bookworm from docker-offline)"))
    return image("python")


def leaves(tree):
    """Every scalar of a nested dict/list (values recorded by the helm stand-in, for instance)."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from leaves(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from leaves(value)
    elif tree is not None:
        yield tree


@contextmanager
def server(argv, log_file, probe_url: str, timeout: float, env=None, get=None):
    """Start a server process (``airstack.proc``), wait until ``probe_url`` answers 2xx (asked with ``get``,
    by default ``httpx.get``), stop it on exit.

    A process that exits while waited for fails at once with the end of its log.
    """
    import httpx
    from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

    from airstack import proc

    process = proc.start(argv, log_file=log_file, env=env)

    @retry(retry=retry_if_exception_type(httpx.HTTPError), stop=stop_after_delay(timeout), wait=wait_fixed(0.2),
           reraise=True)
    def ready():
        if process.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited: {log_file.read_text()[-2000:]}")
        (get or httpx.get)(probe_url, timeout=2).raise_for_status()

    try:
        ready()
        yield process
    finally:
        proc.stop(process)
