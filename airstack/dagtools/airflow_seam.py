"""The Airflow internals the DAG-run harness (:mod:`airstack.dagtools.runs`) relies on: this module is their one owner.

``dag.test()`` is public; what the harness adds around it is not, and differs between releases:

- **warm**: the parent process builds the in-process Execution API and answers one request, then drops its
  transport (and with it the loop thread), so that workers forked from it inherit the built routes (about
  6 s of CPU each would otherwise pay). It needs ``supervisor.in_process_api_server`` to be one API per
  process (``lru_cache``) and its transport to stop its own loop when dropped: Airflow 3.3.
- **hook**: ``supervisor.run_task_in_process`` wrapped, to note each task's exception and log slice (the
  per-task detail of a failure). ``dag.test()`` looks it up there on each task: 3.2 and 3.3.
- **one API**: Airflow 3.2 builds a new in-process Execution API for every task. With the lock's Starlette and
  cadwyn, a task's requests then reach an app whose lifespan never ran, and ``dag.test()`` itself fails every
  task with ``'State' object has no attribute 'svcs_registry'`` (even outside this harness). Memoising
  ``in_process_api_server`` (as 3.3 does) makes it one API per process, as in 3.3.

:data:`RELEASES` says which apply to which release; each one listed has a contract test
(``tests/dags/checker/test_airflow_seam.py``, run on each release by ``tests/integration/test_airflow_seam.py``).
On any other release the harness runs plain ``dag.test()``, and every outcome says that its per-task detail is
reduced. An internal that a listed release should have and does not is a :class:`HarnessError`: the harness's
failure, reported as such, never a DAG's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

from airstack.errors import AirstackError

# release (major.minor) -> the internals that apply there (each release here has a contract test)
RELEASES: dict[str, frozenset[str]] = {
    "3.2": frozenset({"hook", "one_api"}),
    "3.3": frozenset({"warm", "hook"}),
}
# One version of each release that the contract test installs (tests/integration/test_airflow_seam.py).
CONTRACT_VERSIONS = {"3.2": "3.2.2", "3.3": "3.3.2"}


class HarnessError(AirstackError):
    """The DAG-run harness cannot do what it must on this Airflow (not a DAG's failure)."""


@dataclass(frozen=True)
class Seam:
    """What the harness may use on one Airflow version."""

    airflow: str
    uses: frozenset[str]

    @property
    def release(self) -> str:
        return ".".join(self.airflow.split(".")[:2])

    @property
    def warm(self) -> bool:
        return "warm" in self.uses

    @property
    def hook(self) -> bool:
        return "hook" in self.uses

    @property
    def one_api(self) -> bool:
        return "one_api" in self.uses

    @property
    def reduced(self) -> str:
        """Why a failure's per-task detail is reduced here (no hook), or ""."""
        if self.hook:
            return ""
        return (f"per-task detail reduced: the harness has no contract with Airflow {self.airflow} "
                f"(it has with {', '.join(sorted(RELEASES))}), so it runs plain dag.test()")


def for_version(version: str) -> Seam:
    """The seam of Airflow ``version`` (pure): the internals :data:`RELEASES` lists for its release, or none."""
    release = ".".join(version.split(".")[:2])
    return Seam(version, RELEASES.get(release, frozenset()))


@functools.lru_cache(maxsize=1)
def current() -> Seam:
    """The seam of the Airflow installed here."""
    from importlib.metadata import version

    return for_version(version("apache-airflow-core"))


def _supervisor():
    from airflow.sdk.execution_time import supervisor

    return supervisor


def _require(module, name: str, seam: Seam):
    if not hasattr(module, name):
        raise HarnessError(f"Airflow {seam.airflow} has no {module.__name__}.{name}, which the harness uses "
                           "on this release: update airstack/dagtools/airflow_seam.py (and its contract test)")
    return getattr(module, name)


# ------------------------------------------------------------------------------- one API --
def prepare() -> None:
    """What every process running ``dag.test()`` needs first (idempotent).

    The in-process API's lifespan builds a token validator, which needs a signing secret: a throwaway one,
    in this process's environment only (and its forks'). On a release that builds an Execution API per
    task (3.2), one per process instead.
    """
    import secrets

    from airstack import airflow_env

    if not os.environ.get("AIRFLOW__API_AUTH__JWT_SECRET"):
        airflow_env.configure_process({"AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32)})
    seam = current()
    if not seam.one_api:
        return
    supervisor = _supervisor()
    build = _require(supervisor, "in_process_api_server", seam)
    if not hasattr(build, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(build)


# --------------------------------------------------------------------------------- warm-up --
def warm_up() -> bool:
    """Build the in-process Execution API and answer one request, then stop its loop thread (before forking).

    The first request builds the versioned routes (about 3 s of CPU); they stay in the app, which forked
    workers inherit. The transport (and with it the loop thread) is dropped, and Airflow's own finalizer
    stops the thread: nothing runs beside this thread when it forks. False where it does not apply.
    """
    seam = current()
    prepare()
    if not seam.warm:
        return False
    import gc

    import httpx

    build = _require(_supervisor(), "in_process_api_server", seam)
    if not hasattr(build, "cache_info"):
        raise HarnessError(f"Airflow {seam.airflow}: in_process_api_server is not one API per process: "
                           "update airstack/dagtools/airflow_seam.py")
    api = build()  # (once the first transport's lifespan has closed, the next one needs prepare()'s secret)
    with httpx.Client(transport=api.transport, base_url="http://in-process") as client:
        client.get("/health")
    _drop_transport(api)
    gc.collect()
    return True


def after_fork() -> None:
    """In a forked worker: a loop thread never survives a fork, so the warm API gets a new transport."""
    if current().warm:
        _drop_transport(_supervisor().in_process_api_server())
    prepare()


def _drop_transport(api) -> None:
    try:
        del api.transport
    except AttributeError:
        pass


# ---------------------------------------------------------------------------- task hook --
def hook_tasks(before: Callable[[str], None], after: Callable[[str, BaseException | None], None]):
    """Wrap Airflow's in-process task runner: ``before(task_id)``, ``after(task_id, error)`` around each task.

    Returns the undo, or None where the hook does not apply (plain dag.test(); see :attr:`Seam.reduced`).
    """
    seam = current()
    if not seam.hook:
        return None
    supervisor = _supervisor()
    original = _require(supervisor, "run_task_in_process", seam)

    def run_task_in_process(ti, task, **kwargs):
        before(ti.task_id)
        error = None
        try:
            result = original(ti=ti, task=task, **kwargs)
            error = getattr(result, "error", None)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            after(ti.task_id, error)

    supervisor.run_task_in_process = run_task_in_process
    return lambda: setattr(supervisor, "run_task_in_process", original)
