"""Worker images by name (folders under images/).

DAGs name an image (``"pandas-basic"``) and get a full reference. The registry comes from
``AIRSTACK_IMAGE_REGISTRY`` (empty: local images), the tag from ``AIRSTACK_IMAGE_TAG``
(default ``latest``). Content-addressed tags replace that default in the images issue.
"""

from __future__ import annotations

import os
import re

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def image_ref(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"image name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    registry = os.environ.get("AIRSTACK_IMAGE_REGISTRY", "").rstrip("/")
    tag = os.environ.get("AIRSTACK_IMAGE_TAG", "latest")
    return f"{registry + '/' if registry else ''}{name}:{tag}"
