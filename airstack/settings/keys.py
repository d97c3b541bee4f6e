"""Keys: which age identity decrypts an environment, and the Airflow keys kept in the settings.

Who holds which key:
- ``local``: its age identity is committed (settings/local/age.key) on purpose. It unlocks
  only throwaway local credentials, and lets `nox -s up` and `nox -s test` work on a fresh
  clone. Tests prove it is not a recipient of any other environment.
- ``integration`` / ``production``: the identity is held by the team (a password manager)
  and by CI as the ``SOPS_AGE_KEY`` context variable; production can also be decrypted by
  whoever may use its KMS key. Neither is ever committed.

Any identity that can decrypt is accepted. sops is offered, in this order: every identity in
``SOPS_AGE_KEY``, those in the file ``SOPS_AGE_KEY_FILE`` names, the environment's committed
key (``settings/<env>/age.key``, local only), then sops' own default
(``~/.config/sops/age/keys.txt``). An identity in ``SOPS_AGE_KEY`` or ``SOPS_AGE_KEY_FILE``
that cannot be parsed is an error naming the variable (sops itself would skip it silently).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from airstack.errors import ConfigError
from airstack.settings.schema import Keys

COMMITTED_KEY = "age.key"  # settings/<env>/age.key, committed for local only


def identities(text: str, source: str) -> list[str]:
    """The age identities in ``text`` (one per line, ``#`` comments allowed); a line that is none names ``source``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("AGE-PLUGIN-"):  # a plugin's identity (YubiKey...): sops hands it to the plugin
            found.append(line)
            continue
        try:
            recipient_of(line)
        except Exception:  # pyrage raises its own IdentityError, or ValueError
            raise ConfigError(f"{source}: line {number} is not an age identity (AGE-SECRET-KEY-1...): fix it, or "
                              f"unset {source.split(' ')[0]}") from None
        found.append(line)
    return found


def key_env(root: Path, env: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables that give sops every identity that may decrypt ``env`` (the order: module docstring).

    ``SOPS_AGE_KEY_FILE`` itself reaches sops unchanged (sops reads it too); its identities are
    checked here. ``SOPS_AGE_KEY`` is given the user's identities plus the committed key's.
    """
    environ = os.environ if environ is None else environ
    offered = identities(environ.get("SOPS_AGE_KEY", ""), "SOPS_AGE_KEY")
    key_file = environ.get("SOPS_AGE_KEY_FILE")
    if key_file:
        path = Path(key_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"SOPS_AGE_KEY_FILE: {key_file} does not exist: point it at your age key file, or "
                              "unset it")
        identities(path.read_text(), f"SOPS_AGE_KEY_FILE ({key_file})")
    committed = root / "settings" / env / COMMITTED_KEY
    if committed.is_file():
        offered += identities(committed.read_text(), f"settings/{env}/{COMMITTED_KEY}")
    return {"SOPS_AGE_KEY": "\n".join(offered)} if offered else {}


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
