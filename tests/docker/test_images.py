"""Real image builds with the Docker SDK, from the offline base images (CI: docker-offline)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from airstack import paths
from airstack.cli import run_main
from airstack.docker_client import get_client
from airstack.external_images import image
from airstack.images.main import main
from tests.helpers import python_base_or_skip, table_rows

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("images/",)

pytestmark = pytest.mark.docker
ROOT = paths.repo_root()
REGISTRY = "127.0.0.1:5000"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A copy of what the images are built from, so that builds write their manifest there."""
    return paths.scratch_copy(tmp_path_factory.mktemp("images-repo"),
                              ("images", "requirements", "dags", "plugins", "settings"))


@pytest.fixture()
def cli(scratch, monkeypatch, capsys):
    monkeypatch.setenv("AIRSTACK_ROOT", str(scratch))

    def run(*argv: str) -> tuple[int, str, str]:
        code = run_main(main, list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _row(out: str, name: str) -> list[str]:
    for cells in table_rows(out):
        if cells[0] == name:
            return cells
    raise AssertionError(f"{name} not in:\n{out}")


def _tag(out: str, name: str) -> str:
    return _row(out, name)[2]


@pytest.fixture(scope="module")
def built(scratch):
    """The runtime image and the pip worker image, built for real (once per run; content tags make reruns free)."""
    import os

    python_base_or_skip()

    os.environ["AIRSTACK_ROOT"] = str(scratch)
    try:
        assert run_main(main, ["build", "airflow", "etl-basic"]) == 0
    finally:
        os.environ.pop("AIRSTACK_ROOT", None)
    from airstack.images import manifest

    return manifest.read(scratch)["images"]


def test_runtime_image_runs_the_locked_airflow(built):
    client = get_client()
    ref = f"airflow:{built['airflow']['tag']}"
    assert client.containers.run(ref, ["version"], remove=True).decode().strip() == "3.3.2"
    assert client.containers.run(ref, entrypoint=["id", "-u"], remove=True).decode().strip() == "50000"
    listing = client.containers.run(ref, entrypoint=["ls", "-A", "/opt/airflow/dags"], remove=True).decode()
    assert listing.strip() == ""  # no DAGs: they come from the DAG bundle
    # GitDagBundle's git, and the provider that runs it.
    assert client.containers.run(ref, entrypoint=["git", "--version"], remove=True).decode().startswith("git ")
    assert client.containers.run(ref, entrypoint=["python3", "-c", "import airflow.providers.git.bundles.git"],
                                 remove=True) == b""
    config = client.images.get(ref).attrs["Config"]
    assert config["Healthcheck"]["Test"][-1] == "/usr/local/bin/airstack-healthcheck"
    assert client.containers.run(ref, entrypoint=["python3", "/usr/local/bin/airstack-healthcheck"],
                                 remove=True) == b""  # exit 0: Airflow imports


def test_pip_worker_image_has_its_packages(built):
    ref = f"etl-basic:{built['etl-basic']['tag']}"
    code = ("import requests, psycopg2, tenacity; from importlib.metadata import version; "
            "print(version('requests'), version('tenacity'))")
    out = get_client().containers.run(ref, ["python", "-c", code], remove=True)
    assert out.decode().split() == ["2.32.3", "9.0.0"]


def test_nothing_changed_nothing_built_and_tags_stable(built, cli):
    code, out, _ = cli("build", "airflow", "etl-basic")
    assert code == 0 and "nothing to build: every image is current" in out
    assert _tag(out, "airflow") == built["airflow"]["tag"] and _tag(out, "etl-basic") == built["etl-basic"]["tag"]


def test_one_byte_edit_gives_a_new_tag(built, cli, scratch):
    requirements = scratch / "images" / "etl-basic" / "requirements.txt"
    original = requirements.read_bytes()
    try:
        requirements.write_bytes(original + b"\n")
        code, out, _ = cli("list", "etl-basic")
        assert code == 0 and _tag(out, "etl-basic") != built["etl-basic"]["tag"]
    finally:
        requirements.write_bytes(original)
    (scratch / "images" / "etl-basic" / ".dockerignore").write_text("notes.md\n")
    try:
        base = _tag(cli("list", "etl-basic")[1], "etl-basic")
        (scratch / "images" / "etl-basic" / "notes.md").write_text("ignored\n")
        assert _tag(cli("list", "etl-basic")[1], "etl-basic") == base
    finally:
        (scratch / "images" / "etl-basic" / ".dockerignore").unlink()
        (scratch / "images" / "etl-basic" / "notes.md").unlink(missing_ok=True)


def test_push_and_pull_back(built, cli):
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=3).raise_for_status()
    except httpx.HTTPError:
        pytest.skip(f"no registry at {REGISTRY} (start one with docker-offline start --registry)")
    registry = f"{REGISTRY}/airstack-test-{uuid.uuid4().hex[:8]}"  # a fresh repository: the push really happens
    code, out, _ = cli("list", "etl-basic", "--registry", registry)
    assert _row(out, "etl-basic")[4] == "no"
    code, out, err = cli("push", "etl-basic", "--registry", registry)
    assert code == 0, err
    tag = built["etl-basic"]["tag"]
    client = get_client()
    client.images.remove(f"{registry}/etl-basic:{tag}")
    pulled = client.images.pull(f"{registry}/etl-basic", tag=tag)
    assert pulled.id == client.images.get(f"etl-basic:{tag}").id
    code, out, _ = cli("list", "etl-basic", "--registry", registry)
    assert _row(out, "etl-basic")[2:5] == [tag, "yes", "yes"]


def test_conda_image_builds_where_its_base_exists(cli):
    base = image("micromamba")
    from docker.errors import DockerException

    try:
        get_client().images.get(base)
    except DockerException:
        code, _, err = cli("build", "pandas-basic")
        assert code == 1 and f"base image {base} is not available" in err and "AIRSTACK_MICROMAMBA_IMAGE" in err
        code, out, _ = cli("list")  # the table still lists every image, saying what is missing
        assert code == 0 and _row(out, "pandas-basic")[2] == "-"
        assert f"pandas-basic: base image {base} is not available" in out
        # `nox -s ci` here: the others build, the conda image is reported and skipped.
        code, out, err = cli("build", "--skip-unavailable-base")
        assert code == 0 and f"pandas-basic: skipped: base image {base} is not available" in out, err
        assert {"airflow", "etl-basic"} <= {cells[0] for cells in table_rows(out)}
        pytest.skip(f"the conda base image {base} is not available here (no registry); its context and Dockerfile "
                    "are tested in tests/unit/test_images_spec.py")
    code, out, err = cli("build", "pandas-basic")
    assert code == 0, err


def test_failed_build_shows_the_last_log_lines(cli, scratch):
    folder = scratch / "images" / "broken"
    folder.mkdir()
    (folder / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && exit 3\n")
    (folder / "README.md").write_text("fails on purpose\n")
    try:
        code, _, err = cli("build", "broken")
    finally:
        shutil.rmtree(folder)
    assert code == 1
    assert "error: building broken failed" in err and "about to fail" in err and "Traceback" not in err
