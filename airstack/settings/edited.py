"""After ``settings-edit`` (``sops edit``): number types the decrypted document no longer shows, from the file's tags.

sops edit re-encrypts the YAML the editor saved and tags each value with its YAML type:
``ENC[...,type:float]`` for ``1.0``, ``type:int`` for ``1`` (values it leaves in plaintext keep their YAML
form). Decrypting writes a whole float without its fraction, so the document that comes back says ``1``.
:func:`as_written` puts the floats back from the tags, so that :func:`airstack.settings.values.number_types`
refuses ``1.0`` after an edit as it does before any other write. Only right after ``sops edit``: files
written through JSON (``settings-init``, tests) tag every number ``float``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


from airstack.config_files import read_yaml
from airstack.settings.values import number_types

_TYPE = re.compile(r"^ENC\[AES256_GCM,.*,type:(\w+)\]$")


def _is_float(stored: Any) -> bool:
    if isinstance(stored, float):
        return True
    match = _TYPE.match(stored) if isinstance(stored, str) else None
    return bool(match) and match.group(1) == "float"


def as_written(stored: Any, decrypted: Any) -> Any:
    """``decrypted`` with each whole number that ``stored`` (the file as sops wrote it) tags as a float a float."""
    if isinstance(decrypted, dict):
        stored = stored if isinstance(stored, dict) else {}
        return {key: as_written(stored.get(key), value) for key, value in decrypted.items()}
    if isinstance(decrypted, list):
        stored = stored if isinstance(stored, list) and len(stored) == len(decrypted) else [None] * len(decrypted)
        return [as_written(s, d) for s, d in zip(stored, decrypted)]
    if isinstance(decrypted, int) and not isinstance(decrypted, bool) and _is_float(stored):
        return float(decrypted)
    return decrypted


def problems(path: Path, display: str, decrypted: Any) -> list[str]:
    """One line per whole float the edit wrote where a number's type matters (``path``: the edited file)."""
    stored = read_yaml(path, display)
    return [f"{display}: {where}: {problem}" for where, problem in number_types(as_written(stored, decrypted))]
