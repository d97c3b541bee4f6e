"""Secret values in rendered manifests, masked: short digests that show a change and hide the value (pure).

A plan without the helm-diff plugin compares ``helm template`` with ``helm get manifest`` through these
(:meth:`airstack.deploy.helm_binary.HelmBinary.diff`), and so does the Helm stand-in.
"""

from __future__ import annotations

import hashlib
import re

import yaml


_MASK = re.compile(r"^<sha256:[0-9a-f]{8}>$")


def _masked(value) -> str:
    text = str(value)
    return text if _MASK.match(text) else f"<sha256:{hashlib.sha256(text.encode()).hexdigest()[:8]}>"


def installed_objects(manifest: str) -> list[dict]:
    """The objects a release keeps (``helm get manifest``): the manifest's, hooks left out."""
    return [d for d in yaml.safe_load_all(manifest) if isinstance(d, dict)
            and "helm.sh/hook" not in ((d.get("metadata") or {}).get("annotations") or {})]


def mask_secret_values(doc: dict) -> dict:
    """``doc`` with a Secret's values replaced by short digests (diffable, not readable); others as they are."""
    if doc.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(doc.get(field), dict):
                doc[field] = {k: _masked(v) for k, v in doc[field].items()}
    return doc


def mask_secrets(manifest: str) -> list[str]:
    """A manifest's lines with every Secret value replaced by a short digest (diffable, not readable)."""
    out: list[str] = []
    for doc in yaml.safe_load_all(manifest):
        if isinstance(doc, dict):
            out += ["---", *yaml.safe_dump(mask_secret_values(doc), sort_keys=True).splitlines()]
    return out
