"""Shared test setup: an isolated Airflow home, the session's Postgres, Docker detection.

The Airflow environment is set when this file is imported, before any test module can
import Airflow. The metadata database is configured by the ``airflow_db`` fixture, once
the Postgres provider has started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from airstack import paths
from airstack.airflow_env import base_env
from airstack.errors import AirstackError, PostgresUnavailableError
from airstack.postgres import PostgresServer, choose_provider, postgres_server, probe
from airstack.verdict import could_not_run, lacking

ROOT = paths.repo_root()
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airstack-test-airflow-home-"))
os.environ.update(base_env(AIRFLOW_HOME, paths.dags_folder(), ROOT / "plugins"))
# A fresh key per test run: never stored, never hard-coded.
os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

_DOCKER = pytest.StashKey[tuple[bool, str]]()
# (fixture, xdist group), first match wins: tests sharing a database share a worker.
XDIST_GROUPS = (("dag_runs", "dag_runs"), ("airflow_settings", "dag_runs"),
                ("airflow_db", "airflow_db"), ("postgres", "postgres"),
                ("upgrade_rehearsal", "upgrade"))  # tests/integration/test_upgrade.py: one rehearsal, minutes
_POSTGRES = pytest.StashKey[tuple]()
_IMAGE_PROBLEM = "airstack_postgres_image_problem"
_POSTGRES_FAILED = pytest.StashKey[str]()  # set when the session's Postgres did not start


def pytest_configure(config: pytest.Config) -> None:
    # Once per session: pytest-xdist's workers take their controller's answer on the Postgres image.
    probes = probe(image_problem=getattr(config, "workerinput", {}).get(_IMAGE_PROBLEM))
    config.stash[_DOCKER] = (probes.docker, probes.docker_reason)
    try:
        config.stash[_POSTGRES] = (probes, choose_provider(probes), None)
    except PostgresUnavailableError as exc:
        # Told once, before any test: not once per test that needs Postgres (exit 4, as a usage error).
        pytest.exit(f"postgres: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    if config.getoption("--prestart") and not config.getoption("numprocesses", None) and _runs_dags(config):
        _start_postgres(config, migrate=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist: hand each worker the controller's probe of the Postgres image (one pull attempt per session)."""
    node.workerinput[_IMAGE_PROBLEM] = node.config.stash[_POSTGRES][0].image_problem


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    _, choice, error = config.stash[_POSTGRES]
    docker_ok, docker_reason = config.stash[_DOCKER]
    return [
        f"postgres provider: {choice.describe()}" if choice else f"postgres: none ({error})",
        "docker: a daemon answers" if docker_ok else f"docker: unavailable ({docker_reason}); docker tests skip",
        f"airflow home: {AIRFLOW_HOME}",
    ]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    docker_ok, docker_reason = config.stash[_DOCKER]
    skip = pytest.mark.skip(reason=lacking("docker", docker_reason))
    xdist = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if item.get_closest_marker("docker") and not docker_ok:
            item.add_marker(skip)
        if item.get_closest_marker("e2e") and not os.environ.get("AIRSTACK_E2E"):
            item.add_marker(pytest.mark.skip(reason="end-to-end: run `nox -s test-e2e` (.ci/run does)"))
        # Under pytest-xdist (`--dist loadgroup`), tests that share a database fixture run on
        # one worker, so that each server is started and migrated once; the DAG runs (the
        # slowest group) get a worker of their own, with every test that imports settings/local
        # (airflow_settings) into that worker's database.
        names = getattr(item, "fixturenames", ())
        group = next((g for fixture, g in XDIST_GROUPS if fixture in names), None)
        if group and xdist:  # without the plugin (`-p no:xdist`) the mark is unknown to --strict-markers
            item.add_marker(pytest.mark.xdist_group(group))


_PARSE_TIMES: list[dict] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the parse times that tests/dags/test_dag_integrity.py records (works under xdist too)."""
    if report.when == "call":
        _PARSE_TIMES.extend(value for key, value in report.user_properties if key == "dag_parse")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _PARSE_TIMES:
        return
    terminalreporter.section("DAG parse times")
    for r in sorted(_PARSE_TIMES, key=lambda r: -r["seconds"]):
        flag = f"  OVER BUDGET ({r['budget']:g} s)" if r["seconds"] > r["budget"] else ""
        terminalreporter.write_line(f"{r['seconds']:7.3f} s  {r['tasks']:3d} tasks  {r['sql']} SQL at parse  "
                                    f"{r['file']}{flag}")


PHASES: dict[str, float] = {}  # where the session's time went; AIRSTACK_TEST_PHASES=FILE keeps it (nox -s bench)


@contextlib.contextmanager
def phase(name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        PHASES[name] = round(PHASES.get(name, 0.0) + time.perf_counter() - started, 3)


class _Background:
    """Something slow started in a thread as soon as the session knows it will be needed."""

    def __init__(self, start) -> None:
        self._stack = contextlib.ExitStack()
        executor = ThreadPoolExecutor(1)
        self._future = executor.submit(start, self._stack)
        executor.shutdown(wait=False)  # its thread ends with the job

    def result(self):
        return self._future.result()

    def close(self) -> None:
        wait([self._future])
        self._stack.close()


_PRESTARTED = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--prestart", action="store_true", default=False,
                     help="start Postgres and migrate Airflow's database in the background before collection "
                          "(`nox -s test` does: it always needs them)")


def _runs_dags(config: pytest.Config) -> bool:
    """Whether DAG tests will run: always, but with --changed-since only when a change affects a DAG."""
    ref = config.getoption("--changed-since", None)
    if not ref:
        return True
    from airstack.gate.pytest_affected import affected_for

    _, affected = affected_for(config, ref)
    return affected.everything or bool(affected.dag_files)


def _start_postgres(config: pytest.Config, migrate: bool) -> None:
    """Start the session's Postgres in a thread and, with ``migrate``, migrate Airflow's database there in a
    subprocess (on another core, while this process collects or warms the Execution API)."""
    started = config.stash.setdefault(_PRESTARTED, {})
    probes, choice, _ = config.stash[_POSTGRES]
    if "postgres" in started or choice is None:
        return

    def start(stack):
        with phase(f"postgres start ({choice.provider.value}, background)"):
            server = stack.enter_context(postgres_server(choice, probes))
        if migrate:
            with phase("metadata database migrated (background, another process)"):
                from airstack import airflow_env

                airflow_env.migrate(server.dsn)
        return server, migrate

    started["postgres"] = _Background(start)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start Postgres (waiting on Docker or initdb) and warm the in-process Execution API (for the
    DAG runs) in the background, while the first tests, collection's leftovers and each other go on.

    Not in a pytest-xdist worker: it collects every test but runs only the share it is sent later, so it
    starts them at the first test of its share that needs them (:func:`pytest_runtest_setup`)."""
    if not _xdist_worker(session.config):
        _prestart(session.config, {name for item in session.items for name in getattr(item, "fixturenames", ())})


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _prestart(config: pytest.Config, needs: set[str]) -> None:
    """Start in the background what tests needing the fixtures ``needs`` will wait for (once per session)."""
    if "postgres" in needs:
        _start_postgres(config, migrate="airflow_db" in needs)
    started = config.stash.setdefault(_PRESTARTED, {})
    if "dag_runs" in needs and "execution_api" not in started:
        from airstack.dagtools import runs

        def warm(stack):
            with phase("execution API warm-up (background)"):
                runs.warm_execution_api()

        started["execution_api"] = _Background(warm)


def postgres_failed(config: pytest.Config) -> str | None:
    """Why the session's Postgres did not start (then every test that needs it could not run), or None."""
    return config.stash.get(_POSTGRES_FAILED, None)


def postgres_available(config: pytest.Config) -> bool:
    """Whether a Postgres provider was found (the header says which, or why none)."""
    return config.stash[_POSTGRES][1] is not None


def prestarted(config: pytest.Config, name: str):
    """The result of what pytest_collection_finish started, or None when it did not start it."""
    background = config.stash.get(_PRESTARTED, {}).get(name)
    return background.result() if background else None


def pytest_sessionfinish(session: pytest.Session) -> None:
    for background in session.config.stash.get(_PRESTARTED, {}).values():
        background.close()
    if os.environ.get("AIRSTACK_TEST_PHASES") and PHASES:
        Path(os.environ["AIRSTACK_TEST_PHASES"]).write_text(json.dumps(PHASES, indent=2))


@pytest.fixture(scope="session")
def postgres(pytestconfig: pytest.Config):
    """The session's Postgres server (provider chosen as the header says; started in the background)."""
    probes, choice, error = pytestconfig.stash[_POSTGRES]
    if choice is None:
        pytest.fail(error, pytrace=False)
    with contextlib.ExitStack() as stack:
        try:
            with phase("waiting for postgres"):
                started = prestarted(pytestconfig, "postgres")
            server = started[0] if started else stack.enter_context(postgres_server(choice, probes))
        except AirstackError as exc:  # told once: the other tests that need it could not run (pytest_runtest_setup)
            pytestconfig.stash[_POSTGRES_FAILED] = f"Postgres ({choice.provider.value}) did not start: {exc}"
            server = None
        if server is None:
            pytest.fail(pytestconfig.stash[_POSTGRES_FAILED], pytrace=False)
        yield server


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """After the session's Postgres failed to start (one error says why), a test that needs it could not run.

    In a pytest-xdist worker, the first test that needs Postgres (or the DAG runs) starts them."""
    if _xdist_worker(item.config):
        _prestart(item.config, set(getattr(item, "fixturenames", ())))
    failed = item.config.stash.get(_POSTGRES_FAILED, None)
    if failed and "postgres" in getattr(item, "fixturenames", ()):
        pytest.skip(could_not_run(failed))


@pytest.fixture(scope="session")
def airflow_db(postgres: PostgresServer, pytestconfig: pytest.Config):
    """Airflow's metadata database on the session's Postgres, migrated."""
    migrated = (prestarted(pytestconfig, "postgres") or (None, False))[1]
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = postgres.dsn
    from airflow import settings

    # Airflow may have been imported (with its default database) during collection.
    settings.configure_vars()
    settings.reconfigure_orm()
    if not migrated:
        from airstack.airflow_env import migrate

        with phase("metadata database migrated (another process)"):
            migrate(postgres.dsn)
    yield postgres
    settings.dispose_orm()


@pytest.fixture(scope="session")
def s3_standin():
    """The local env's S3 stand-in, for real: a moto server on 127.0.0.1 (a free port), one bucket.

    Yields the endpoint, the bucket, and an Airflow connection URI-free JSON for ``AIRFLOW_CONN_*``
    with throwaway credentials (moto accepts any; none is stored).
    """
    from airstack.standins.aws import moto_server

    with moto_server() as endpoint:
        yield _s3_bucket(endpoint)


def _s3_bucket(endpoint: str) -> dict:
    """The bucket ``airstack-test`` on ``endpoint``, a client, and the Airflow connection (random keys)."""
    import json
    import secrets

    import boto3

    key, secret = f"test-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                          aws_secret_access_key=secret)
    client.create_bucket(Bucket="airstack-test")
    connection = json.dumps({"conn_type": "aws", "login": key, "password": secret,
                             "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}})
    return {"endpoint": endpoint, "bucket": "airstack-test", "client": client, "connection": connection}
