"""What a local runtime is (:class:`Runtime`), and which one an environment uses.

Two runtimes implement the protocol: :class:`~airstack.localenv.native.NativeRuntime` (Postgres
from the PostgreSQL binaries, the services as processes) and
:class:`~airstack.localenv.docker_runtime.DockerRuntime` (containers). ``tests/unit/test_local_runtime.py``
checks that both match it, signature for signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from airstack.errors import LocalEnvError
from airstack.localenv.config import SERVICES, LocalConfig

RUNTIMES = ("docker", "native")
OPTIONS = ("s3", "celery", "metrics")


@runtime_checkable
class Runtime(Protocol):
    """What `up`, `down`, `status`, `logs` and `clean` ask of a runtime."""

    name: str  # "native" or "docker"
    config: LocalConfig
    airflow: str  # the Airflow CLI the services run (a path in this venv, or `airflow` in the image)
    stop_seconds: dict[str, float]  # per service, how long it took to end (what `down` measured)

    @property
    def metadata_dsn(self) -> str:
        """The metadata database as this (host) process reaches it."""

    @property
    def postgres_source(self) -> str:
        """Which Postgres the runtime runs (for `up` and `status`)."""

    def prepare(self, settings, build: bool = True) -> None:
        """What the runtime needs from settings/local before it starts anything (``build``: its image)."""

    def preflight(self) -> None:
        """Fail before starting anything when a port the env needs is taken by something else."""

    def pods_env(self, projects: dict) -> dict[str, str]:
        """How pod tasks reach the env: the environment of the service that runs them."""

    def begin(self, env: dict[str, str]) -> None:
        """Before the services start (the native runtime imports Airflow once, in the background)."""

    def end(self) -> None:
        """After `up` (what :meth:`begin` started ends)."""

    def import_seconds(self) -> dict[str, float | None]:
        """How long importing Airflow took, per launcher (for the benchmark; empty when nothing was imported)."""

    def started_at(self, service: str) -> datetime:
        """When the service started."""

    def parsing_idle(self) -> bool | None:
        """Whether the DAG processor parses nothing right now."""

    def dag_files(self) -> list[str] | None:
        """The DAG files the DAG processor parses, as Airflow lists them (None: not known)."""

    def parse_dag_files(self, files: list[str]) -> dict[str, dict]:
        """Each file parsed once by the services' Airflow, as the DAG processor parses it (filecheck.py)."""

    def postgres_running(self) -> bool:
        """Whether the env's Postgres runs."""

    def start_postgres(self) -> None:
        """Start Postgres unless it runs, and return once it accepts connections."""

    def stop_postgres(self) -> None:
        """Stop Postgres (its data stays)."""

    def pid(self, service: str) -> int | str | None:
        """The running service's process id (or container id); None when it does not run."""

    def start_service(self, service: str, env: dict[str, str], argv: list[str] | None = None) -> None:
        """Start an Airflow service, or with ``argv`` one of the options' servers, unless it runs."""

    def check_alive(self, services: Iterable[str] = SERVICES) -> None:
        """Raise :class:`LocalEnvError` with its last log lines as soon as a service (or Postgres) has died."""

    def stop_services(self, timeout: float = 20.0, notify: Callable[[str], object] | None = None) -> list[str]:
        """Stop every service in the order that loses nothing; the ones that were running."""

    def log_tail(self, service: str, lines: int) -> str:
        """The service's last log lines."""

    def remove_all(self) -> None:
        """Remove what the runtime made outside the env's folders (containers, volumes, pods kept)."""


def runtime_file(config: LocalConfig) -> Path:
    """Where the env records its runtime: its data lives there until `clean`."""
    return config.root / ".airstack" / "local" / "runtime"


def current_runtime(config: LocalConfig) -> str | None:
    path = runtime_file(config)
    return path.read_text().strip() if path.is_file() else None


def make_runtime(name: str, config: LocalConfig) -> Runtime:
    if name == "docker":
        from airstack.docker_client import connect
        from airstack.localenv.docker_runtime import DockerRuntime

        return DockerRuntime(config, connect(timeout=600))
    from airstack.localenv.native import NativeRuntime

    return NativeRuntime(config)


def recorded_runtime(config: LocalConfig) -> Runtime:
    """The runtime this env uses (native when none is recorded)."""
    return make_runtime(current_runtime(config) or "native", config)


def anything_running(runtime: Runtime) -> bool:
    return runtime.postgres_running() or any(runtime.pid(s) for s in SERVICES)


def decide_runtime(requested: str | None, recorded: str | None, wanted: str, docker: tuple[bool, str],
                   images_problem: str = "") -> tuple[str, str]:
    """Which runtime, and why (pure): --runtime; else the env's recorded one; else native for the options
    (``wanted``); else docker where a daemon answers (``docker``: ok, reason) and can have the images it needs,
    else native. ``images_problem`` says why that daemon cannot have them ("": it can); with --runtime docker
    it is an error, otherwise the way to native, said in the reason."""
    if requested == "docker" and images_problem:
        raise LocalEnvError(f"--runtime docker: {images_problem}; or `nox -s up -- --runtime native`")
    if requested:
        return requested, "asked for"
    if recorded:
        return recorded, "this environment's runtime; `nox -s clean` to change"
    if wanted:
        return "native", f"{wanted} run in the native runtime"
    ok, reason = docker
    if not ok:
        return "native", f"no Docker: {reason}"
    if images_problem:
        return "native", f"a Docker daemon answers, but {images_problem}"
    return "docker", "a Docker daemon answers"


def docker_images_problem() -> str:
    """Why the Docker daemon cannot have the images the docker runtime needs (the runtime image's base, the
    Postgres image), each on the daemon or pulled in one attempt; "" when it has them."""
    from concurrent.futures import ThreadPoolExecutor

    from airstack.external_images import describe, unobtainable

    with ThreadPoolExecutor(2) as pool:  # both at once: a proxy that hangs costs one wait, not two
        missing = [m for m in pool.map(unobtainable, ("python", "postgres")) if m]
    return describe(missing) if missing else ""


def choose_runtime(requested: str | None, config: LocalConfig, extras=None) -> tuple[Runtime, str]:
    """The runtime :func:`decide_runtime` picks from what this machine offers, and why."""
    from airstack.docker_client import docker_status

    wanted = ", ".join(f"--{s}" for s in OPTIONS if extras and getattr(extras, s))
    recorded = current_runtime(config)
    docker, images_problem = (False, "not asked"), ""
    if not wanted and (requested == "docker" or not (requested or recorded)):  # (the options refuse docker below)
        docker = docker_status()
        if docker[0]:
            images_problem = docker_images_problem()
    name, why = decide_runtime(requested, recorded, wanted, docker, images_problem)
    if wanted and name != "native":
        raise LocalEnvError(f"{wanted} run in the native runtime, and this environment's is {name} ({why}): "
                            f"`nox -s down`, then `nox -s up -- --runtime native {wanted}`")
    if recorded and recorded != name and anything_running(make_runtime(recorded, config)):
        raise LocalEnvError(f"the {recorded} runtime is running: `nox -s down` first, then `up` with {name}")
    return make_runtime(name, config), f"{name} ({why})"
