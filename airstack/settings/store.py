"""Environments on disk: ``settings/<env>/secret.yaml`` (sops-encrypted) next to ``.sops.yaml``."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from airstack.config_files import read_yaml
from airstack.errors import ConfigError
from airstack.settings import sops
from airstack.settings.keys import key_env
from airstack.settings.schema import SettingsFile, parse_settings, set_extra_connection_types

SECRET_FILE = "secret.yaml"


def settings_dir(root: Path) -> Path:
    return root / "settings"


def environments(root: Path) -> list[str]:
    """Every folder under settings/ that holds a secret.yaml, sorted."""
    base = settings_dir(root)
    return sorted(p.parent.name for p in base.glob(f"*/{SECRET_FILE}")) if base.is_dir() else []


def stored(root: Path, env: str) -> dict:
    """``settings/<env>/secret.yaml`` as stored, read without its key: sops leaves the structure, ids and key
    names readable, the values encrypted ({} when the file is absent). The one reader of that view."""
    path = secret_path(root, env)
    data = read_yaml(path, path.relative_to(root).as_posix()) if path.is_file() else {}
    return data if isinstance(data, dict) else {}


def secret_path(root: Path, env: str) -> Path:
    """``settings/<env>/secret.yaml``; refused when it is (or lies behind) a symlink leading out of the repository."""
    known = environments(root)
    if env not in known:
        raise ConfigError(f"unknown environment {env!r}: settings/ has {', '.join(known) or 'none'}")
    path = settings_dir(root) / env / SECRET_FILE
    if not path.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"settings/{env}/{SECRET_FILE} is a symlink to {path.resolve()}, outside the repository: "
                          "settings are read only from the repository; replace the link with the file")
    return path


def load_project_options(root: Path) -> None:
    """Read [tool.airstack.settings] (extra connection types) from pyproject.toml."""
    pyproject = root / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text()) if pyproject.is_file() else {}
    options = data.get("tool", {}).get("airstack", {}).get("settings", {})
    extra = options.get("extra-connection-types", [])
    if not isinstance(extra, list) or not all(isinstance(t, str) for t in extra):
        raise ConfigError(f"{pyproject}: tool.airstack.settings.extra-connection-types must be a list of strings")
    set_extra_connection_types(extra)


def decrypt_raw(root: Path, env: str) -> Any:
    return sops.decrypt(secret_path(root, env), env=env, key_env=key_env(root, env), root=root)


def load(root: Path, env: str) -> SettingsFile:
    """Decrypt (in memory) and validate one environment's settings."""
    return load_document(root, env)[1]


def load_document(root: Path, env: str) -> tuple[dict, SettingsFile]:
    """The decrypted document as written, and its validated form (one sops call)."""
    load_project_options(root)
    path = secret_path(root, env)
    document = decrypt_raw(root, env)
    return document, parse_settings(document, path.relative_to(root).as_posix())


def save(root: Path, env: str, document: dict) -> None:
    """Validate, encrypt and replace the environment's file atomically (the whole document, through JSON)."""
    path = secret_path(root, env)
    parse_settings(document, path.relative_to(root).as_posix())
    ciphertext = sops.encrypt(document, path, env=env, key_env=key_env(root, env), root=root)
    sops.write_atomically(path, ciphertext)


@contextlib.contextmanager
def writing(root: Path, env: str) -> Iterator[None]:
    """One writer of ``settings/<env>/secret.yaml`` at a time (a read-modify-write such as ``settings-keys``).

    An advisory lock (``flock``) on the environment's folder: a second writer is refused in one
    line rather than left to overwrite the first one's keys. The staging files of writers killed mid-way
    (``.secret.yaml.<pid>.tmp``, their process gone) are removed first.
    """
    folder = secret_path(root, env).parent
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"settings/{env}/{SECRET_FILE}: another settings-keys is changing it: run this "
                              "again when it has finished") from None
        sops.remove_stale_temporaries(folder / SECRET_FILE)  # what a writer killed mid-way left
        yield
    finally:
        os.close(fd)  # releases the lock


def save_keys(root: Path, env: str, keys: dict) -> None:
    """Replace ``airflow.keys`` only (``sops set``): every other value of the file stays as it is."""
    path = secret_path(root, env)
    sops.set_value(path, ["airflow", "keys"], keys, env=env, key_env=key_env(root, env), root=root)


@dataclass
class PlaintextIds:
    """What an encrypted file shows without its key: connection ids, variable names, pool names."""

    connections: set[str] = field(default_factory=set)
    variables: set[str] | None = field(default_factory=set)  # None: given as an encrypted JSON string
    pools: set[str] = field(default_factory=set)


def plaintext_ids(path: Path) -> PlaintextIds:
    data = read_yaml(path)
    airflow = (data.get("airflow") or {}) if isinstance(data, dict) else {}
    ids = PlaintextIds()
    for conn in airflow.get("connections") or []:
        if isinstance(conn, dict) and isinstance(conn.get("id"), str):
            ids.connections.add(conn["id"])
    variables = airflow.get("variables")
    ids.variables = set(variables) if isinstance(variables, dict) else (set() if variables is None else None)
    for pool in airflow.get("pools") or []:
        if isinstance(pool, dict) and isinstance(pool.get("name"), str):
            ids.pools.add(pool["name"])
    return ids
