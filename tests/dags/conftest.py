"""DAG tests: integrity reports for every file, and the connections/variables DAG runs need."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airstack import paths
from airstack.cli import run_main
from airstack.dagtools.check.parse import FileReport, check_files, dag_files
from airstack.dagtools.check.policy import DagPolicy, load_policy, load_run_policy
from airstack.images import manifest
from airstack.images.main import main as images_main
from airstack.postgres import PostgresServer
from airstack.postgres.sql import clone_database, create_database
from airstack.settings.schema import Airflow
from tests.helpers import python_base_or_skip

NO_DAG_FILES = "<no DAG files>"


def dag_file_params(folder: Path) -> list:
    """One param per DAG file (id: its path); a failing sentinel when there is none."""
    files = dag_files(folder)
    if not files:
        return [pytest.param(None, id=NO_DAG_FILES)]
    return [pytest.param(f, id=f.relative_to(folder.parent).as_posix()) for f in files]


@pytest.fixture(scope="session")
def dag_policy() -> DagPolicy:
    return load_policy(paths.pyproject())


# ------------------------------------------------------- one mistake, one failure --
class DagHealth:
    """Every DAG file checked once (in this process: the repo has few files), and what that tells the other tests.

    A file that fails to import fails its integrity test and nothing else: the other tests leave it
    out, saying "fails to import: see test_dag_file[dags/x.py]". A DAG whose templates do not render
    (or that cannot be serialized) is not run: its run skips, "fails integrity: see ...".
    """

    def __init__(self, folder: Path, reports: list[FileReport]) -> None:
        self.folder = folder
        self.reports = {str((folder.parent / r.file).resolve()): r for r in reports}
        self.left_out_of: dict[str, list[str]] = {}  # file -> the tests that walk every DAG and left it out
        self._dags: list | None = None

    def _report(self, path: Path | str) -> FileReport | None:
        return self.reports.get(str(Path(path).resolve()))

    def import_failure(self, path: Path | str) -> str | None:
        """Why tests other than its integrity test leave ``path`` out; None when it imports (or is not a DAG file)."""
        report = self._report(path)
        return f"fails to import: see test_dag_file[{report.file}]" if report and not report.imported else None

    def not_run(self, path: Path | str) -> str | None:
        """Why the DAGs of ``path`` are not run at all: it does not import, or it defines no DAG."""
        report = self._report(path)
        if report is not None and report.imported and not report.dag_ids:
            return f"defines no DAG: see test_dag_file[{report.file}]"
        return self.import_failure(path)

    def run_skips(self) -> dict[str, str]:
        """The DAGs not to run, by id: those whose integrity test fails for a reason the run would fail on too."""
        return {dag_id: f"fails integrity: see test_dag_file[{r.file}]"
                for r in self.reports.values() for dag_id in r.unrunnable}

    def not_runnable(self, path: Path | str, dag_id: str) -> str | None:
        return self.not_run(path) or (self.run_skips().get(dag_id) if self._report(path) else None)

    def leave_out(self, who: str) -> set[str]:
        """The files that do not import (as shown: dags/x.py), noted as left out by ``who`` (told at the end)."""
        broken = {r.file for r in self.reports.values() if not r.imported}
        for file in broken:
            self.left_out_of.setdefault(file, [])
            if who not in self.left_out_of[file]:
                self.left_out_of[file].append(who)
        return broken

    def importable(self, who: str) -> list[Path]:
        """The DAG files that import; the others are noted as left out by ``who``."""
        broken = self.leave_out(who)
        return [Path(path) for path, r in sorted(self.reports.items()) if r.file not in broken]

    def dags(self, who: str) -> list:
        """The DAGs of every file that imports, parsed once (the integrity check renders templates into its own)."""
        from airstack.dagtools.check.parse import parse_file

        files = self.importable(who)
        if self._dags is None:
            self._dags = [d for f in files for d in parse_file(f, self.folder)]
        return self._dags

    def left_out(self) -> list[str]:
        return [f"{file} {self.import_failure(self.folder.parent / file)}; left out of: {', '.join(who)}"
                for file, who in sorted(self.left_out_of.items())]


_HEALTH: dict[Path, DagHealth] = {}


def dag_health() -> DagHealth:
    """The session's :class:`DagHealth` for the DAG folder under test (checked on first use)."""
    from tests.conftest import phase

    folder = paths.dags_folder()
    if folder not in _HEALTH:
        with phase("DAG files checked (integrity)"):
            reports = check_files(dag_files(folder), folder, load_policy(paths.pyproject()), workers=1)
        _HEALTH[folder] = DagHealth(folder, reports)
    return _HEALTH[folder]


@pytest.fixture(scope="session")
def integrity_reports() -> dict[str, FileReport]:
    return dag_health().reports


# ------------------------------------------------------------------ settings for DAG runs --
def point_connection_at(settings: Airflow, conn_id: str, dsn: str) -> Airflow:
    """The settings with one Postgres connection's endpoint replaced by ``dsn`` (ids and the rest unchanged)."""
    parts = urlsplit(dsn)
    host = parts.hostname or dict(q.split("=", 1) for q in parts.query.split("&") if "=" in q).get("host")
    endpoint = {"host": host, "port": parts.port, "login": parts.username, "password": parts.password,
                "schema_": parts.path.lstrip("/")}
    connections = [c.model_copy(update=endpoint) if c.id == conn_id else c for c in settings.connections]
    assert connections != list(settings.connections), f"settings/local has no connection {conn_id!r}"
    return settings.model_copy(update={"connections": connections})


@pytest.fixture(scope="session")
def airflow_settings(airflow_db: PostgresServer) -> dict:
    """settings/local imported into the metadata DB by the settings importer (one transaction).

    settings/local points `warehouse_db` at the local environment's Postgres; here it points
    at a scratch `warehouse` database on the test server. Everything else is the file's.
    """
    from airstack.settings import importer, store

    from tests.conftest import phase

    with phase("settings/local decrypted and imported"):
        settings = store.load(paths.repo_root(), "local").airflow
        warehouse = create_database(airflow_db.dsn, "warehouse")
        importer.apply(point_connection_at(settings, "warehouse_db", warehouse))
    return {"settings": settings, "warehouse_dsn": warehouse}


# ---------------------------------------------------------------------------- DAG runs --
RUN_LOGS = paths.repo_root() / ".airstack" / "logs" / "dag-runs"  # one <dag_id>.log per run (CI keeps them)


def run_here(file_name: str, dag_id: str, logs: str):
    """One DAG run in this process (for tests that set up its pods or storage first), as the workers run
    them: retries off, the output in ``RUN_LOGS/<logs>/<dag_id>.log``, ``explain()`` saying why it failed.
    Skipped, saying why, when the DAG fails its integrity test in a way its run would too."""
    from airstack.dagtools import runs
    from airstack.dagtools.check.parse import parse_file

    folder = paths.dags_folder()
    reason = dag_health().not_runnable(folder / file_name, dag_id)
    if reason:
        pytest.skip(reason)
    dag = next(d for d in parse_file(folder / file_name, folder) if d.dag_id == dag_id)
    return runs.run_dag(dag, f"{folder.name}/{file_name}", folder, RUN_LOGS / logs)


def _dag_file_of(item: pytest.Item) -> Path | None:
    """The DAG file a test is about: its ``dag_file`` parameter, or its mark's ``dags/x.py`` (x.py in the DAG
    folder under test, which ``AIRSTACK_DAGS_FOLDER`` may move)."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("dag_file") is not None:
        return Path(callspec.params["dag_file"]).resolve()
    marker = item.get_closest_marker("dag_file")
    if marker is None:
        return None
    name = Path(marker.args[0])
    return paths.dags_folder() / name.relative_to("dags") if name.parts[0] == "dags" else paths.repo_root() / name


def _files_to_run(items: list[pytest.Item]) -> list[Path]:
    """The DAG files that the selected tests need runs of (parametrised by dag_file, or marked with one)."""
    named = {_dag_file_of(item) for item in items if "dag_runs" in getattr(item, "fixturenames", ())}
    files = {name.resolve() for name in named if name}
    return sorted(files, key=lambda f: -f.stat().st_size)  # big files first: they tend to run longest


@pytest.fixture(scope="session")
def dag_runs(request, airflow_settings, airflow_db: PostgresServer):
    """Every DAG file the selected tests need, run with dag.test() by workers forked from this warm process.

    Each worker gets its own copy of the metadata database (settings/local imported), so the
    runs are independent; they run while the other tests go on. See airstack.dagtools.runs.
    """
    from airstack import airflow_compat
    from airstack.dagtools import runs

    from tests.conftest import PHASES, phase, prestarted

    health = dag_health()
    files = [f for f in _files_to_run(request.session.items) if not health.not_run(f)]
    skips = {**load_run_policy(paths.pyproject()).skip, **health.run_skips()}
    with phase("waiting for the execution API warm-up"):
        prestarted(request.config, "execution_api")  # started in the background, if it was
        runs.warm_execution_api()  # (nothing left to do then)
    airflow_compat.disconnect()  # nobody connected while the database is copied
    workers = max(1, min(len(files), os.cpu_count() or 1))
    with phase(f"database copied for {workers} run workers"):
        databases = [clone_database(airflow_db.dsn, f"dag_runs_{i}") for i in range(workers)]
    started = runs.start(files, paths.dags_folder(), skips, databases, RUN_LOGS)
    yield _Runs(started, health)
    for file in files:
        for outcome in (o for o in started.finished(file) if not o.skip):
            PHASES[f"dag.test() {outcome.dag_id} (in a worker)"] = round(outcome.seconds, 3)
            if not outcome.ok:
                _FAILED_RUNS.append(outcome.explain().splitlines()[0])
    started.close()


class _Runs:
    """The runs, as tests ask for them: a file that fails to import (or defines no DAG) was not run, and its tests
    skip, saying why."""

    def __init__(self, runs, health: DagHealth) -> None:
        self._runs, self._health = runs, health

    def outcomes(self, path: Path) -> list:
        reason = self._health.not_run(path)
        if reason:
            pytest.skip(reason)
        return self._runs.outcomes(path)


_FAILED_RUNS: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The DAG files that the tests walking every DAG left out, and the failed DAG runs, one line each, at the
    very end (whatever the width)."""
    left_out = [line for health in _HEALTH.values() for line in health.left_out()]
    if left_out:
        terminalreporter.section("DAG files left out of the tests that walk every DAG", yellow=True)
        for line in left_out:
            terminalreporter.write_line(line)
    if _FAILED_RUNS:
        terminalreporter.section("DAG runs that failed", red=True)
        for line in _FAILED_RUNS:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that wait for DAG runs go last: this process does the others while the workers run."""
    items.sort(key=lambda item: "dag_runs" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session", autouse=True)
def _start_dag_runs_first(request):
    """Start the DAG runs before the first test, so that they run while the other tests do. Where the session's
    Postgres does not start, the tests that need it could not run, each saying why, and the others (integrity)
    still run: this fixture, which every test uses, does not pass that failure on."""
    from tests.conftest import postgres_available, postgres_failed

    wanted = any("dag_runs" in getattr(item, "fixturenames", ()) for item in request.session.items)
    if wanted and postgres_available(request.config):
        try:
            request.getfixturevalue("dag_runs")
        except pytest.fail.Exception:
            if not postgres_failed(request.config):
                raise


# ------------------------------------------------- KubernetesPodOperator DAGs, pods as containers --
@pytest.fixture(scope="session")
def etl_basic(tmp_path_factory) -> str:
    """etl-basic, built for real in a scratch copy (the content tag is the repo's; reruns build nothing).

    Skipped where the Python base image is missing and cannot be pulled; a build that fails is a failure.
    """
    python_base_or_skip()
    scratch = paths.scratch_copy(tmp_path_factory.mktemp("worker-images"),
                                 ("images", "requirements", "dags", "plugins"))
    os.environ["AIRSTACK_ROOT"] = str(scratch)
    try:
        assert run_main(images_main, ["build", "etl-basic"]) == 0
    finally:
        os.environ.pop("AIRSTACK_ROOT", None)
    built = manifest.read(scratch)["images"]["etl-basic"]
    return f"{built['repository']}:{built['tag']}"


@pytest.fixture()
def local_settings_policy():
    """The local env's ``airflow_local_settings`` (``airstack/localenv/local_settings/``), registered with
    Airflow's policy plugins for one test, as Airflow registers it at start where it is on ``PYTHONPATH``
    (this process imported Airflow long before). The DAGs parsed meanwhile get its task policy."""
    from airstack import airflow_compat
    from airstack.localenv.local_settings import airflow_local_settings as module

    undo = airflow_compat.register_task_policy(module.task_policy)
    yield module
    undo()


@pytest.fixture()
def local_pods_env(request, etl_basic, tmp_path, monkeypatch, airflow_settings, local_settings_policy):
    """What the local env sets for its services: its local settings, pods on, claims mapped to folders,
    settings/local's projects. Containers get the test module's ``LABEL`` (``key=value``), so each module
    finds and removes its own."""
    from airstack.settings import store

    projects = store.load(paths.repo_root(), "local").projects
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("AIRSTACK_LOCAL_PODS", "docker")
    monkeypatch.setenv("AIRSTACK_IMAGES", json.dumps({"etl-basic": etl_basic}))
    monkeypatch.setenv("AIRSTACK_LOCAL_VOLUMES", json.dumps({"airflow-data": str(data)}))
    monkeypatch.setenv("AIRSTACK_LOCAL_PROJECTS", json.dumps({k: v.model_dump() for k, v in projects.items()}))
    monkeypatch.setenv("AIRSTACK_LOCAL_POD_LABELS", json.dumps(dict([request.module.LABEL.split("=")])))
    return {"data": data, "project": projects["example1"], "image": etl_basic}
