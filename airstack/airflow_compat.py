"""Every use of Airflow's internals, one function per capability (parse-time lookups and DAG calls seen, a file
parsed as the DAG processor does, a DAG serialized, a template context's parts, the metadata database, the CLI
in-process, a cluster policy, the DAG-run harness): the rest of airstack imports only Airflow's public modules
(``tests/unit/test_structure.py``), and an Airflow upgrade breaks this file, loudly
(``tests/integration/test_airflow_contract.py`` runs each capability on every release :data:`RELEASES` lists).

The DAG-run harness (:mod:`airstack.dagtools.runs`): ``dag.test()`` is public; what the harness adds around it
is not, and differs between releases:

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

:data:`RELEASES` says which apply to which release. On any other, the harness runs plain ``dag.test()``, and
every outcome says that its per-task detail is reduced. An internal that a listed release should have and does
not is a :class:`HarnessError`: the harness's failure, reported as such, never a DAG's.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from collections.abc import Callable
from dataclasses import dataclass

from airstack.errors import AirstackError

# release (major.minor) -> the internals that apply there (each release here has a contract test)
RELEASES: dict[str, frozenset[str]] = {
    "3.2": frozenset({"hook", "one_api"}),
    "3.3": frozenset({"warm", "hook"}),
}
# One version of each release that the contract test installs (tests/integration/test_airflow_contract.py).
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

    warm = property(lambda self: "warm" in self.uses)
    hook = property(lambda self: "hook" in self.uses)
    one_api = property(lambda self: "one_api" in self.uses)

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
                           "on this release: update airstack/airflow_compat.py (and its contract test)")
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
                           "update airstack/airflow_compat.py")
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


# ------------------------------------------------------------------- parse-time lookups --
_watchers: dict[str, list[Callable]] = {}


def _watch(kind: str, watcher: Callable) -> Callable[[], None]:
    _watchers[kind].append(watcher)
    return lambda: _watchers[kind].remove(watcher)


def watch_lookups(refuse: Callable[[str, str, object], None]) -> Callable[[], None]:
    """Call ``refuse(kind, what, key)`` (kind: "variable" or "connection") before every lookup; the undo.

    Wrapped: the Task SDK's ``_get_variable``/``_get_connection`` (what ``Variable.get`` and a hook's
    connection lookup reach; on a release without them, the SDK's public ``Variable.get``/``Connection.get``)
    and the Airflow 2 entry points on the models. ``refuse`` raises to refuse it.
    A recording secrets backend would not do: it sees a lookup only after the SDK's cache, and on 3.2 an
    exception it raises is logged and passed over (the next backend answers), so it cannot refuse one.
    """
    if "lookups" in _watchers:
        return _watch("lookups", refuse)
    import airflow.sdk.execution_time.context as sdk_context
    from airflow import sdk
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable

    _watchers["lookups"] = []

    def wrap(owner, name: str, kind: str, what: str, bound: bool) -> None:
        original = getattr(owner, name)

        def spy(*args, **kwargs):
            args = args[1:] if bound else args  # (the class, for a classmethod: `original` is bound to it)
            for watcher in list(_watchers["lookups"]):
                watcher(kind, what, (args or tuple(kwargs.values()) or (None,))[0])
            return original(*args, **kwargs)

        spy.__wrapped__ = original
        setattr(owner, name, classmethod(spy) if bound else spy)

    if hasattr(sdk_context, "_get_variable") and hasattr(sdk_context, "_get_connection"):
        wrap(sdk_context, "_get_variable", "variable", "Variable.get", False)
        wrap(sdk_context, "_get_connection", "connection", "connection lookup", False)
    else:
        wrap(sdk.Variable, "get", "variable", "Variable.get", True)
        wrap(sdk.Connection, "get", "connection", "connection lookup", True)
    wrap(Variable, "get", "variable", "Variable.get", True)
    wrap(Connection, "get_connection_from_secrets", "connection", "Connection.get_connection_from_secrets", True)
    return _watch("lookups", refuse)


def watch_dags(seen: Callable[[str, set[str], bool], None]) -> Callable[[], None]:
    """Call ``seen(dag_id, keyword arguments given, made by @asset)`` for every ``DAG(...)``; the undo."""
    if "dags" in _watchers:
        return _watch("dags", seen)
    from airflow.sdk import DAG
    from airflow.sdk.definitions.asset.decorators import _DAGFactory

    _watchers["dags"] = []
    original = DAG.__init__
    asset_factory = _DAGFactory.create_dag.__code__

    def init(self, *args, **kwargs):
        dag_id = str(args[0] if args else kwargs.get("dag_id"))
        for watcher in list(_watchers["dags"]):
            watcher(dag_id, set(kwargs), sys._getframe(1).f_code is asset_factory)
        original(self, *args, **kwargs)

    init.__wrapped__ = original
    DAG.__init__ = init
    return _watch("dags", seen)


# ------------------------------------------------------------------------ DAG files --
def new_dagbag(dags_folder, file=None):
    """A DagBag as Airflow 3's DAG processor makes it (the folder a bundle, on sys.path): empty, or with ``file``'s
    DAGs collected (its import errors in ``import_errors``)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(file or dags_folder), bundle_path=Path(dags_folder), bundle_name="dags-folder",
                        collect_dags=file is not None, load_op_links=False)


def process_file(bag, path, logger) -> tuple[list, dict[str, str]]:
    """Parse one file into ``bag`` (with ``logger`` for its messages): (the DAGs it returned, import errors)."""
    bag._log = logger  # instead of its structlog logger
    return bag.process_file(str(path), only_if_updated=False, safe_mode=False), dict(bag.import_errors)


def might_contain_dag(path) -> bool:
    """Airflow's safe-mode heuristic (``[core] might_contain_dag_callable``) for one file."""
    from airflow.utils.file import might_contain_dag as heuristic

    return heuristic(str(path), safe_mode=True)


def dag_files(folder, safe_mode: bool = True) -> list[str]:
    """The Python files Airflow lists in ``folder`` (``.airflowignore`` honoured)."""
    from airflow.utils.file import list_py_file_paths

    return list_py_file_paths(str(folder), safe_mode=safe_mode)


def serialize_dag(dag) -> dict:
    """The DAG as the DAG processor stores it; raises what Airflow raises for a DAG it cannot serialize."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.serialize_dag(dag)


def template_parts(task) -> tuple[frozenset[str], object, dict]:
    """What a task's template context is made of: (its keys, the ``macros`` accessor with the plugins' macros,
    the task's processed params)."""
    from airflow.sdk.definitions.context import KNOWN_CONTEXT_KEYS
    from airflow.sdk.definitions.param import process_params
    from airflow.sdk.execution_time.context import MacrosAccessor
    from airflow.sdk.plugins_manager import integrate_macros_plugins

    integrate_macros_plugins()  # `macros.<plugin>.<name>`, as the task runner does
    params = process_params(task.dag, task, None, suppress_exception=True)
    return frozenset(KNOWN_CONTEXT_KEYS), MacrosAccessor(), params


def run_time_reference() -> type:
    """The base class of what a template holds that resolves only at run time (an XComArg, a mapped value)."""
    from airflow.sdk.definitions._internal.mixins import ResolveMixin

    return ResolveMixin


def is_mapped(task) -> bool:
    """Whether ``task`` is a mapped task (``.partial().expand()``): its fields are in ``partial_kwargs``."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    return isinstance(task, MappedOperator)


# ------------------------------------------------------------------- metadata database --
def session():
    """A session on the metadata database: committed on exit, rolled back on an error."""
    from airflow.utils.session import create_session

    return create_session()


def engine():
    """This process's engine on the metadata database."""
    from airflow import settings

    return settings.get_engine()


def reconfigure_orm() -> None:
    """Re-read the database settings and the Fernet key (from the environment) and rebuild this process's ORM."""
    from airflow import settings
    from airflow.models.crypto import get_fernet

    settings.configure_vars()
    settings.reconfigure_orm()
    get_fernet.cache_clear()


def disconnect(orm: bool = False) -> None:
    """Close this process's database connections (before forking: none is shared; it reconnects on demand);
    ``orm``: the ORM torn down too (when done with the database)."""
    from airflow import settings

    if orm:
        settings.dispose_orm()
    else:
        settings.engine.dispose()


def fernet():
    """Airflow's Fernet (``[core] fernet_key``, its rotation list included)."""
    from airflow.models.crypto import get_fernet

    return get_fernet()


# --------------------------------------------------------------------------- the rest --
def run_cli() -> None:
    """Airflow's CLI in this process, on ``sys.argv`` (raises SystemExit as the command does)."""
    from airflow.__main__ import main

    main()


def register_task_policy(policy: Callable[[object], None]) -> Callable[[], None]:
    """``policy`` as a ``task_policy`` of this process's cluster policies (as an ``airflow_local_settings`` on
    ``PYTHONPATH`` registers it at start); the undo."""
    from airflow.policies import hookimpl
    from airflow.settings import get_policy_plugin_manager

    class Policy:
        @hookimpl
        def task_policy(self, task) -> None:
            policy(task)

    plugin, manager = Policy(), get_policy_plugin_manager()
    manager.register(plugin)
    return lambda: manager.unregister(plugin)
