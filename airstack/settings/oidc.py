"""Settings' ``airflow.auth.oidc``: FAB's login through an OpenID Connect provider (deployed envs).

::

    airflow:
      auth:
        oidc:
          provider: sso                  # FAB's provider name: the login URL is /auth/login/sso
          client_id: airflow             # readable in git
          client_secret: ...             # encrypted by sops; reaches the api-server from a Secret only
          server_metadata_url: https://idp.example.com/.well-known/openid-configuration
          scopes: [openid, email, profile]
          roles_claim: groups            # the ID token / userinfo claim that lists the user's groups
          role_mapping:                  # IdP group -> FAB role
            airflow-admins: Admin
            data-team: User
          default_role: Viewer           # a user in no mapped group; none: such a user is refused

The rest of the file stays readable; ``render.oidc_data`` gives the chart what is not secret.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

FAB_ROLES = ("Admin", "Op", "User", "Viewer")
Role = Literal[FAB_ROLES]
# FAB routes /auth/login/<provider> and /auth/oauth-authorized/<provider>: a URL path segment.
PROVIDER = r"^[a-z][a-z0-9_-]{0,31}$"
CLAIM = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def check_metadata_url(value: str) -> str:
    """https, or plain http on 127.0.0.1 only (a provider started by a test)."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname == "127.0.0.1":
        return value
    raise ValueError("must be an https:// URL (http only on 127.0.0.1, for tests), "
                     "e.g. https://idp.example.com/.well-known/openid-configuration")


class Oidc(_Model):
    provider: Annotated[str, StringConstraints(pattern=PROVIDER)]
    client_id: str = Field(min_length=1, max_length=256)
    client_secret: str = Field(min_length=8, repr=False)
    server_metadata_url: str
    scopes: list[Annotated[str, StringConstraints(pattern=r"^[!#-\[\]-~]+$")]] = Field(
        default_factory=lambda: ["openid", "email", "profile"], min_length=1)
    roles_claim: Annotated[str, StringConstraints(pattern=CLAIM)] = "groups"
    role_mapping: dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], Role] = Field(
        default_factory=dict)
    default_role: Role | None = None

    @field_validator("server_metadata_url")
    @classmethod
    def _metadata_url(cls, value: str) -> str:
        return check_metadata_url(value)

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("must include openid (the ID token carries the user's claims)")
        return value

    @model_validator(mode="after")
    def _someone_can_log_in(self) -> Oidc:
        if not self.role_mapping and self.default_role is None:
            raise ValueError("give role_mapping or default_role: without either nobody could log in")
        return self

    def public(self) -> dict:
        """Everything but the client secret: what the api-server reads from AIRSTACK_OIDC (not secret)."""
        return self.model_dump(exclude={"client_secret"})


class Auth(_Model):
    oidc: Oidc | None = None
