"""The official apache-airflow chart at the version deploy.yaml pins: its schema (kept as data) and its source.

- The schema: ``charts/airflow/schemas/airflow-chart-<version>.values.schema.json``, the release's
  ``values.schema.json`` kept as data. ``unknown_keys`` (airstack.upgrade.chart) walks our values through it: a key the
  release does not declare (``workers.kubernetes.resources`` in 1.19.0) is one the chart ignores.
- The source, for rendering with the real Helm engine (its templates are code and are not kept
  here): ``AIRSTACK_OFFICIAL_CHART`` (a chart folder or ``.tgz``), else the cache
  ``~/.cache/airstack/charts/airflow-<version>/airflow``, else the release downloaded once from
  deploy.yaml's repository into that cache (its index's digest checked). Where none of these
  can be had (no network), the rendering tests skip and say how to provide it, for example
  ``helm pull airflow --repo https://airflow.apache.org --version 1.19.0 --untar --untardir
  ~/.cache/airstack/charts/airflow-1.19.0``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.request
from functools import cache
from pathlib import Path

import yaml

from airstack.upgrade.chart import KEPT
from airstack.upgrade.chart import unknown_keys  # noqa: F401 - the key check, shared with `nox -s upgrade`

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("integration", "production")
SOURCE_ENV = "AIRSTACK_OFFICIAL_CHART"


def pinned() -> tuple[str, str]:
    """(version, repository) of the official chart, the same in every deploy.yaml that deploys it."""
    pins = set()
    for env in ENVIRONMENTS:
        airflow = yaml.safe_load((ROOT / "settings" / env / "deploy.yaml").read_text())["helm"]["airflow"]
        pins.add((str(airflow["version"]), airflow["repository"]))
    assert len(pins) == 1, f"the environments pin different official charts: {sorted(pins)}"
    return pins.pop()


def schema_file(version: str) -> Path:
    return ROOT / KEPT.format(version=version)


@cache
def schema(version: str) -> dict:
    path = schema_file(version)
    assert path.is_file(), (f"{path.relative_to(ROOT)} is missing: keep chart {version}'s values.schema.json "
                            "there before pinning it in deploy.yaml")
    return json.loads(path.read_text())


def _cache_dir(version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "airstack" / "charts" / f"airflow-{version}"


def _download(version: str, repository: str, into: Path) -> None:
    """The release's .tgz from the repository's index, digest checked, unpacked into ``into``."""
    with urllib.request.urlopen(f"{repository.rstrip('/')}/index.yaml", timeout=20) as response:  # noqa: S310
        index = yaml.safe_load(response.read())
    (entry,) = [e for e in index["entries"]["airflow"] if str(e["version"]) == version]
    url = entry["urls"][0]
    if "://" not in url:
        url = f"{repository.rstrip('/')}/{url}"
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
        archive = response.read()
    assert hashlib.sha256(archive).hexdigest() == entry["digest"], f"{url}: digest differs from the index's"
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def source(version: str, repository: str) -> tuple[Path | None, str]:
    """(the chart's folder or archive, '') or (None, why it cannot be had)."""
    given = os.environ.get(SOURCE_ENV)
    if given:
        return Path(given), ""
    cached = _cache_dir(version) / "airflow"
    if not (cached / "Chart.yaml").is_file():
        try:
            _download(version, repository, cached.parent)
        except (OSError, ValueError, KeyError) as exc:
            return None, (f"the official chart {version} is not in {cached} and {repository} cannot be reached "
                          f"({exc.__class__.__name__}): set {SOURCE_ENV} to its folder, or `helm pull airflow "
                          f"--repo {repository} --version {version} --untar --untardir {cached.parent}`")
    return cached, ""
