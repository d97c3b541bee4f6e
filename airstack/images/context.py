"""Build contexts and content-addressed tags (pure: no Docker here).

A context is a sorted list of entries (path in the context, executable bit, bytes): the
image folder (minus what its ``.dockerignore`` excludes), the repository paths its
``image.yaml`` includes, the generated Dockerfile of the conda and pip flavours, an
``extra-ca/`` folder (empty unless ``AIRSTACK_EXTRA_CA_BUNDLE`` names a CA bundle, for builds
behind a TLS-intercepting proxy).

The tag is a short SHA-256 of those entries, the build arguments and the base image's id:
the same inputs give the same tag on every machine, and any change gives a new one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from airstack.errors import ConfigError
from airstack.images.spec import ImageSpec, generated_dockerfile

TAG_LENGTH = 12
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".git"}
EXTRA_CA_ENV = "AIRSTACK_EXTRA_CA_BUNDLE"


@dataclass(frozen=True, order=True)
class Entry:
    path: str
    executable: bool
    data: bytes

    @property
    def mode(self) -> int:
        return 0o755 if self.executable else 0o644


def _ignore_matcher(folder: Path):
    from airstack.docker_client import dockerignore_matcher

    ignore = folder / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")] if ignore.is_file() else []
    return dockerignore_matcher(patterns)


def _files(source: Path) -> list[tuple[str, Path]]:
    if source.is_file():
        return [("", source)]
    found = []
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".pyc"):
                continue
            path = Path(dirpath) / name
            found.append((path.relative_to(source).as_posix(), path))
    return found


def _entry(path: str, source: Path) -> Entry:
    return Entry(path, os.access(source, os.X_OK), source.read_bytes())


def context_entries(spec: ImageSpec, root: Path, extra_ca: Path | None = None) -> list[Entry]:
    ignored = _ignore_matcher(spec.folder)
    entries: dict[str, Entry] = {}
    for rel, source in _files(spec.folder):
        if not ignored(rel):
            entries[rel] = _entry(rel, source)
    for target, source_rel in sorted(spec.include.items()):
        source = root / source_rel
        if not source.exists():
            raise ConfigError(f"{spec.folder}/image.yaml: include: {source_rel} does not exist")
        for rel, path in _files(source):
            arcname = f"{target}/{rel}" if rel else target
            if not ignored(arcname):
                entries[arcname] = _entry(arcname, path)
    dockerfile = generated_dockerfile(spec)
    if dockerfile is not None:
        entries["Dockerfile"] = Entry("Dockerfile", False, dockerfile.encode())
    entries["extra-ca/.keep"] = Entry("extra-ca/.keep", False, b"")
    if extra_ca is not None:
        if not extra_ca.is_file():
            raise ConfigError(f"{EXTRA_CA_ENV}={extra_ca}: no such file")
        entries["extra-ca/extra-ca.crt"] = Entry("extra-ca/extra-ca.crt", False, extra_ca.read_bytes())
    return sorted(entries.values())


def extra_ca_from_env(environ: dict[str, str] | None = None) -> Path | None:
    value = (os.environ if environ is None else environ).get(EXTRA_CA_ENV)
    return Path(value) if value else None


def content_tag(entries: list[Entry], buildargs: dict[str, str], base_id: str) -> str:
    digest = hashlib.sha256(b"airstack-image-context-v1\0")
    for e in entries:
        digest.update(f"{e.path}\0{e.mode:o}\0".encode() + hashlib.sha256(e.data).digest())
    digest.update(json.dumps(buildargs, sort_keys=True).encode())
    digest.update(base_id.encode())
    return digest.hexdigest()[:TAG_LENGTH]


def tar_context(entries: list[Entry]) -> bytes:
    """A reproducible tar of the context (fixed owner, mode and time)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(e.data), e.mode, 0, 0, 0
            tar.addfile(info, io.BytesIO(e.data))
    return buffer.getvalue()
