"""Keys: which age identity decrypts an environment, and the Airflow keys kept in the settings.

Who holds which key:
- ``local``: its age identity is committed (settings/local/age.key) on purpose. It unlocks
  only throwaway local credentials, and lets `nox -s up` and `nox -s test` work on a fresh
  clone. Tests prove it is not a recipient of any other environment.
- ``integration`` / ``production``: the identity is held by the team (a password manager)
  and by CI as the ``SOPS_AGE_KEY`` context variable; production can also be decrypted by
  whoever may use its KMS key. Neither is ever committed.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from airstack.settings.schema import Keys

COMMITTED_KEY = "age.key"  # settings/<env>/age.key, committed for local only


def key_env(root: Path, env: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables that give sops the identity for ``env`` (added to what the user has set)."""
    environ = os.environ if environ is None else environ
    committed = root / "settings" / env / COMMITTED_KEY
    if committed.is_file() and not environ.get("SOPS_AGE_KEY_FILE"):
        return {"SOPS_AGE_KEY_FILE": str(committed)}
    return {}


@dataclass(frozen=True)
class AgeKeyPair:
    identity: str  # AGE-SECRET-KEY-1...
    recipient: str  # age1...


def generate_age_key() -> AgeKeyPair:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    return AgeKeyPair(str(identity), str(identity.to_public()))


def recipient_of(identity: str) -> str:
    from pyrage import x25519

    return str(x25519.Identity.from_str(identity.strip()).to_public())


def new_fernet_key() -> str:
    return Fernet.generate_key().decode()


def new_secret() -> str:
    return secrets.token_urlsafe(48)


def fill_missing(keys: Keys) -> tuple[Keys, list[str]]:
    """Generate the keys that are missing; never replace one that exists (connections stay readable)."""
    update: dict[str, str] = {}
    if keys.fernet_key is None:
        update["fernet_key"] = new_fernet_key()
    if keys.api_secret_key is None:
        update["api_secret_key"] = new_secret()
    if keys.jwt_secret is None:
        update["jwt_secret"] = new_secret()
    return keys.model_copy(update=update), sorted(update)


def rotate_fernet(keys: Keys) -> Keys:
    """Airflow's rotation: the new key first, the old ones kept for reading until `--finish-rotation`."""
    previous = [k for k in (keys.fernet_key, *keys.fernet_key_previous) if k]
    return keys.model_copy(update={"fernet_key": new_fernet_key(), "fernet_key_previous": previous})


def finish_rotation(keys: Keys) -> Keys:
    return keys.model_copy(update={"fernet_key_previous": []})
