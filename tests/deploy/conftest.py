"""Deploy tests run in the deploy toolchain's environment (requirements/deploy.txt: boto3,
moto, cfn-lint, helm-python-sdk), not next to Airflow: `nox -s test` runs them with
``--confcutdir=tests/deploy`` so the Airflow test setup in ``tests/conftest.py`` stays out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airstack import paths


@pytest.fixture(scope="session")
def repo_root():
    return paths.repo_root()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real moto server (HTTP) on 127.0.0.1, one per test process; yields its URL.

    It stands in for AWS. Its quirks (DESIGN.md): ElastiCache and EKS resources are
    skipped silently, stacks have no outputs after ``execute_change_set``, there are no
    rollback states; each test names the quirk it relies on.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """Point boto3 at the moto server with throwaway credentials (moto accepts any)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return moto_endpoint


@pytest.fixture(scope="session")
def docker_or_skip():
    """The image step needs a Docker daemon (content tags hash the base image's id)."""
    from airstack.docker_client import docker_status

    ok, reason = docker_status()
    if not ok:
        pytest.skip(f"needs Docker: {reason}")
    from docker.errors import DockerException

    from airstack.docker_client import get_client
    from airstack.external_images import image

    try:
        get_client().images.get(image("python"))
    except DockerException:
        pytest.skip(f"the Python base image {image('python')} is not on this daemon: set AIRSTACK_PYTHON_IMAGE "
                    "(CI: local/python:3.11-bookworm from docker-offline)")


@pytest.fixture()
def scratch_repo(tmp_path, monkeypatch):
    """A copy of the repository whose integration settings are encrypted to a throwaway key kept in the copy
    (the committed integration file is encrypted to a key nobody here holds), with a project and a
    metadata connection so every kind of secret travels. Yields (root, the plaintext settings)."""
    import secrets as random

    from airstack.settings import keys, store
    from airstack.settings.sops_config import add_recipient

    folders = ("settings", "charts", "infra", "images", "requirements", "dags", "plugins")
    root = paths.scratch_copy(tmp_path / "repo", folders, ("pyproject.toml", ".sops.yaml"))
    pair = keys.generate_age_key()
    (root / "settings" / "integration" / keys.COMMITTED_KEY).write_text(pair.identity + "\n")
    add_recipient(root / ".sops.yaml", "integration", pair.recipient)
    filled, _ = keys.fill_missing(keys.Keys())
    document = {
        "airflow": {"keys": filled.model_dump(exclude_none=True),
                    "metadata_connection": f"postgresql+psycopg2://airflow:{random.token_urlsafe(16)}@db:5432/airflow",
                    "connections": [{"id": "warehouse_db", "type": "postgres", "host": "wh.internal", "port": 5432,
                                     "login": "etl", "password": random.token_urlsafe(16), "schema": "warehouse"}],
                    "variables": {"etl_min_order_amount": "10"}, "pools": []},
        "projects": {"example1": {"config": {"REPORT_CURRENCY": "EUR"},
                                  "secret": {"API_TOKEN": random.token_urlsafe(24)}}},
    }
    # The copy's integration file: re-created (sops refuses to overwrite a file it cannot decrypt).
    (root / "settings" / "integration" / "secret.yaml").unlink()
    (root / "settings" / "integration" / "secret.yaml").write_text("airflow: {}\n")
    monkeypatch.setenv("AIRSTACK_ROOT", str(root))
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    store.save(root, "integration", document)
    return root, document


@pytest.fixture()
def helm_standin(tmp_path, monkeypatch):
    """`helm` on PATH: tests/deploy/helm_standin.py (records calls; renders local charts with the real engine)."""
    import json
    import sys

    bin_dir, state = tmp_path / "bin", tmp_path / "helm-state"
    bin_dir.mkdir()
    script = bin_dir / "helm"
    standin = Path(__file__).with_name("helm_standin.py")
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{standin}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HELM_STANDIN_STATE", str(state))

    def calls() -> list[dict]:
        log = state / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []

    return calls
