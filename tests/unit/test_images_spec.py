"""Image folders, pin lint, generated Dockerfiles and contexts: pure, no Docker needed."""

import shutil
import tarfile
import io
from pathlib import Path

import pytest

from airstack import paths
from airstack.errors import ConfigError
from airstack.images.context import content_tag, context_entries, tar_context
from airstack.images.spec import discover, generated_dockerfile, lint_all, lint_conda, lint_requirements, load_spec

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("images/",)

ROOT = paths.repo_root()


def test_repo_images():
    specs = {s.name: s for s in discover(ROOT / "images")}
    assert {"airflow": "dockerfile", "pandas-basic": "conda", "etl-basic": "pip"}.items() <= \
        {k: v.flavour for k, v in specs.items()}.items()
    assert specs["pandas-basic"].base == "micromamba" and specs["etl-basic"].base == "python"
    assert lint_all(ROOT / "images", ROOT) == []


@pytest.mark.parametrize(("line", "pinned"), [
    ("pandas=2.2", True), ("pandas==2.2.3", True), ("python=3.11", True), ("numpy=1.26.*", True),
    ("pandas", False), ("pandas>=2", False), ("pandas  # pinned later", False),
])
def test_conda_pins(tmp_path, line, pinned):
    env = tmp_path / "environment.yml"
    env.write_text(f"channels: [conda-forge]\ndependencies:\n  - '{line}'\n")
    assert (lint_conda(env) == []) is pinned


def test_conda_pip_section_must_be_pinned(tmp_path):
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python=3.11\n  - pip:\n      - requests==2.32.3\n      - rich\n")
    assert lint_conda(env) == [f"{env}: dependencies[1].pip[1]: 'rich' is not pinned (write name==version)"]


def test_requirement_pins(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nrequests==2.32.3\nrich>=13\n-e .\nflask\n")
    assert lint_requirements(req) == [
        f"{req}:3: 'rich>=13' is not pinned (write name==version)",
        f"{req}:4: '-e .': options are not allowed in a worker image's requirements",
        f"{req}:5: 'flask' is not pinned (write name==version)",
    ]


def test_incomplete_folder(tmp_path):
    (tmp_path / "images" / "empty").mkdir(parents=True)
    with pytest.raises(ConfigError, match="needs environment.yml .conda., requirements.txt .pip. or a Dockerfile"):
        discover(tmp_path / "images")


def test_conda_context_and_dockerfile():
    spec = load_spec(ROOT / "images" / "pandas-basic")
    dockerfile = generated_dockerfile(spec)
    assert "FROM ${BASE_IMAGE}" in dockerfile and "micromamba install --yes --name base --file /tmp/environment.yml" \
        in dockerfile
    entries = {e.path: e for e in context_entries(spec, ROOT)}
    assert {"Dockerfile", "environment.yml", "extra-ca/.keep"} <= set(entries)
    with tarfile.open(fileobj=io.BytesIO(tar_context(list(entries.values())))) as tar:
        assert tar.extractfile("Dockerfile").read().decode() == dockerfile
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_conda_lock_is_used_when_present(tmp_path):
    folder = tmp_path / "pandas-basic"
    shutil.copytree(ROOT / "images" / "pandas-basic", folder)
    (folder / "conda-lock.yml").write_text("version: 1\npackage: []\n")
    assert "--file /tmp/conda-lock.yml" in generated_dockerfile(load_spec(folder))


def test_runtime_context_includes_lock_plugins_but_no_dags():
    """DAGs come from the DAG bundle: a DAG change must not change the runtime image's content tag."""
    spec = load_spec(ROOT / "images" / "airflow")
    paths_in = {e.path for e in context_entries(spec, ROOT)}
    assert {"Dockerfile", "healthcheck.py", "requirements/runtime.txt", "plugins/README.md"} <= paths_in
    assert not any(p.startswith("dags/") for p in paths_in)
    assert not any("__pycache__" in p for p in paths_in)


def test_runtime_image_ships_no_tooling_and_no_docker_client():
    """The DAG bundle in the runtime image holds no airstack and no Docker SDK use (the local pod runner is
    airstack.localenv.pods, which the local env supplies), and no local settings: no policy runs pods locally."""
    entries = context_entries(load_spec(ROOT / "images" / "airflow"), ROOT)
    assert not [e.path for e in entries if e.path.startswith("airstack/") or "pods" in Path(e.path).stem
                or "local_settings" in e.path]
    assert [e.path for e in entries if b"AIRSTACK_LOCAL_PODS" in e.data or b"pod_policy" in e.data] == []
    assert [e.path for e in entries if b"import docker" in e.data or b"from docker" in e.data] == []


def test_extra_ca_goes_into_the_context(tmp_path):
    ca = tmp_path / "corp-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    spec = load_spec(ROOT / "images" / "etl-basic")
    entries = {e.path: e for e in context_entries(spec, ROOT, extra_ca=ca)}
    assert entries["extra-ca/extra-ca.crt"].data == ca.read_bytes()
    without = context_entries(spec, ROOT)
    assert content_tag(list(entries.values()), {}, "sha256:x") != content_tag(without, {}, "sha256:x")


def _scratch_image(tmp_path: Path) -> Path:
    folder = tmp_path / "images" / "etl-basic"
    shutil.copytree(ROOT / "images" / "etl-basic", folder)
    (folder / ".dockerignore").write_text("notes/\n*.tmp\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.md").write_text("ignored")
    return folder


def test_tag_is_stable_and_follows_content(tmp_path):
    folder = _scratch_image(tmp_path)

    def tag(base_id="sha256:base1", args=None):
        return content_tag(context_entries(load_spec(folder), tmp_path), args or {}, base_id)

    first = tag()
    assert tag() == first and len(first) == 12
    (folder / "notes" / "todo.md").write_text("ignored, edited")  # .dockerignore'd: no new tag
    (folder / "scratch.tmp").write_text("x")
    assert tag() == first
    req = folder / "requirements.txt"
    req.write_bytes(req.read_bytes() + b" ")  # one byte
    second = tag()
    assert second != first
    assert tag(base_id="sha256:base2") != second  # a new base image
    assert tag(args={"X": "1"}) != second  # other build arguments
    (folder / "requirements.txt").chmod(0o755)  # the executable bit is content too
    assert tag() != second
