"""Worker images by name (folders under images/), always at their current content tag.

``worker_image("pandas-basic")`` returns, in order:
1. the reference in ``AIRSTACK_IMAGES`` (a JSON object name -> reference that deploys set
   on every Airflow pod);
2. the reference from ``images.json`` next to this file, which ``nox -s build-images``
   writes (the local env), with ``AIRSTACK_IMAGE_REGISTRY`` in front;
3. ``<registry>/<name>:latest`` when the image was never built here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MANIFEST = Path(__file__).with_name("images.json")


def worker_image(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"image name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    deployed = json.loads(os.environ.get("AIRSTACK_IMAGES") or "{}")
    if name in deployed:
        return deployed[name]
    registry = os.environ.get("AIRSTACK_IMAGE_REGISTRY", "").rstrip("/")
    prefix = f"{registry}/" if registry else ""
    built = json.loads(MANIFEST.read_text()).get("images", {}) if MANIFEST.is_file() else {}
    if name in built:
        return f"{prefix}{built[name]['repository']}:{built[name]['tag']}"
    return f"{prefix}{name}:latest"
