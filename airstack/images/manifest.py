"""The image manifest: image name -> repository and tag, written by ``build-images``.

DAGs (``dags/common/images.py``), the local env and deploys read it. The registry is not in
it: each environment adds its own (``settings/<env>/deploy.yaml``, or
``AIRSTACK_IMAGE_REGISTRY`` in the pods).
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = Path("dags") / "common" / "images.json"  # inside the DAG bundle, so pods can read it


def build_manifest(tags: dict[str, str]) -> dict:
    return {"images": {name: {"repository": name, "tag": tag} for name, tag in sorted(tags.items())}}


def write(root: Path, manifest: dict) -> Path:
    path = root / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        return {"images": {}}
    return json.loads(path.read_text())
