import json
import sys

import pytest

from airstack import paths

sys.path.insert(0, str(paths.dags_folder()))
from common import images  # noqa: E402


def test_deployed_reference_wins(monkeypatch):
    monkeypatch.setenv("AIRSTACK_IMAGES", json.dumps({"pandas-basic": "reg.example/pandas-basic:abc123def456"}))
    assert images.worker_image("pandas-basic") == "reg.example/pandas-basic:abc123def456"


def test_manifest_with_registry(monkeypatch, tmp_path):
    manifest = tmp_path / "images.json"
    manifest.write_text(json.dumps({"images": {"etl-basic": {"repository": "etl-basic", "tag": "0123456789ab"}}}))
    monkeypatch.setattr(images, "MANIFEST", manifest)
    monkeypatch.delenv("AIRSTACK_IMAGES", raising=False)
    monkeypatch.setenv("AIRSTACK_IMAGE_REGISTRY", "127.0.0.1:5000/airstack/")
    assert images.worker_image("etl-basic") == "127.0.0.1:5000/airstack/etl-basic:0123456789ab"
    assert images.worker_image("never-built") == "127.0.0.1:5000/airstack/never-built:latest"


def test_bad_name():
    with pytest.raises(ValueError, match="lowercase"):
        images.worker_image("Pandas Basic")
