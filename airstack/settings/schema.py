"""The settings file format, validated by pydantic.

Plaintext (before sops encrypts it)::

    airflow:
      metadata_connection: postgresql+psycopg2://airflow:...@db.internal:5432/airflow  # deployed envs only
      celery_broker_url: rediss://broker.internal:6379/0   # deploy.yaml airflow.executor: CeleryExecutor only
      keys:                      # the environment's own keys (settings-keys generates them)
        fernet_key: ...          # encrypts connections and variables in the metadata DB
        fernet_key_previous: []  # older Fernet keys, still readable during a rotation
        api_secret_key: ...      # [api] secret_key
        jwt_secret: ...          # [api_auth] jwt_secret
      connections:
        - id: warehouse_db       # stays readable in git (sops leaves it plaintext)
          type: postgres
          host: db.internal
          port: 5432
          login: etl
          password: ...
          schema: warehouse
          extra: {sslmode: require}   # a mapping, or a JSON object as a string
        - id: api
          type: http
          uri: https://user:pw@api.example.com   # or a URI instead of the fields
      variables:                 # a mapping (names stay readable); a JSON object string is accepted
        etl_min_order_amount: "10"
      pools:
        - name: warehouse
          slots: 4
          description: at most four queries on the warehouse
      users:                     # deployed envs (FabAuthManager): kept by the api-server's sync-users init container
        - username: ada          # stays readable in git, like role, email and names
          role: Admin            # a FAB role: Admin, Op, User, Viewer
          email: ada@example.com
          first_name: Ada
          last_name: Lovelace
          password: ...          # encrypted by sops; at least 12 characters
    projects:                    # seed 004: per project, one ConfigMap and one Secret named after it
      example1:                  # a DNS-1123 label, as in dags/common/kpo.py
        config:                  # plaintext (ConfigMap): environment variables of the project's pods
          REPORT_CURRENCY: EUR
        secret:                  # encrypted by sops (Secret): environment variables too
          API_TOKEN: ...

Ids and variable names are lowercase identifiers (``[a-z][a-z0-9_]*``): they become
``AIRFLOW_CONN_<ID>`` / ``AIRFLOW_VAR_<NAME>`` environment variables on Kubernetes, where
two ids that differ only in case or by ``-`` would collide.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from airstack.config_errors import format_location
from airstack.errors import ConfigError

IDENTIFIER = r"^[a-z][a-z0-9_]{0,249}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER)]
# A project names a ConfigMap, a Secret and a data sub-path: a DNS-1123 label.
PROJECT = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
ProjectName = Annotated[str, StringConstraints(pattern=PROJECT)]
# Keys of a project's config/secret become environment variables of its pods.
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,252}$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]

# Connection types a file may use: those of Airflow's core and of the providers teams use most.
# Extend with [tool.airstack.settings] extra-connection-types in pyproject.toml.
KNOWN_CONNECTION_TYPES = frozenset({
    "aws", "azure", "azure_blob_storage", "azure_data_lake", "bigquery", "cassandra", "databricks",
    "docker", "elasticsearch", "email", "fs", "ftp", "ftps", "generic", "google_cloud_platform",
    "grpc", "hive_cli", "hiveserver2", "http", "https", "imap", "jdbc", "kafka", "kubernetes",
    "mongo", "mssql", "mysql", "odbc", "openlineage", "oracle", "package_index", "postgres",
    "presto", "redis", "redshift", "s3", "samba", "sftp", "slack", "slackwebhook", "smtp",
    "snowflake", "spark", "sqlite", "ssh", "tableau", "trino", "vertica", "wasb",
})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _json_object(value: Any, what: str) -> Any:
    """A mapping, or a JSON string holding an object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from None
        if not isinstance(value, dict):
            raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


class Connection(_Model):
    id: Identifier
    type: str
    description: str | None = None
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    login: str | None = None
    password: str | None = None
    schema_: str | None = Field(None, alias="schema")
    extra: dict[str, Any] | None = None
    uri: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("extra", mode="before")
    @classmethod
    def _extra(cls, value: Any) -> Any:
        return _json_object(value, "extra")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in KNOWN_CONNECTION_TYPES and value not in _extra_types:
            raise ValueError(f"unknown connection type {value!r} (add it to [tool.airstack.settings] "
                             "extra-connection-types in pyproject.toml if a provider defines it)")
        return value

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @model_validator(mode="after")
    def _uri_or_fields(self) -> Connection:
        if self.uri is not None:
            fields = [f for f in ("host", "port", "login", "password", "schema_") if getattr(self, f) is not None]
            if fields:
                raise ValueError(f"give either uri or {', '.join(f.rstrip('_') for f in fields)}, not both")
            if not urlsplit(self.uri).scheme:
                raise ValueError("uri has no scheme (e.g. postgresql://user:pw@host:5432/db)")
        return self

    def airflow_fields(self) -> dict[str, Any]:
        """Keyword arguments for airflow.models.Connection (values included: keep in memory only)."""
        if self.uri is not None:
            return {"conn_id": self.id, "uri": self.uri, "description": self.description}
        return {
            "conn_id": self.id, "conn_type": self.type, "description": self.description, "host": self.host,
            "port": self.port, "login": self.login, "password": self.password, "schema": self.schema_,
            "extra": json.dumps(self.extra, sort_keys=True) if self.extra is not None else None,
        }


class Pool(_Model):
    name: Identifier
    slots: int = Field(ge=-1, description="-1 means unlimited")
    description: str = ""
    include_deferred: bool = False


def _fernet(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("not a Fernet key: expected 32 url-safe base64-encoded bytes") from None
    if len(raw) != 32:
        raise ValueError(f"not a Fernet key: decodes to {len(raw)} bytes, expected 32")
    return value


class Keys(_Model):
    fernet_key: str | None = None
    fernet_key_previous: list[str] = Field(default_factory=list)
    api_secret_key: str | None = Field(None, min_length=32)
    jwt_secret: str | None = Field(None, min_length=32)

    @field_validator("fernet_key")
    @classmethod
    def _fernet_key(cls, value: str | None) -> str | None:
        return None if value is None else _fernet(value)

    @field_validator("fernet_key_previous")
    @classmethod
    def _previous(cls, value: list[str]) -> list[str]:
        return [_fernet(v) for v in value]

    def airflow_fernet_key(self) -> str | None:
        """``[core] fernet_key``: the current key first, then the ones still being rotated out."""
        if self.fernet_key is None:
            return None
        return ",".join([self.fernet_key, *self.fernet_key_previous])


def _variable_value(value: Any) -> str:
    """Airflow stores variables as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


FAB_ROLES = ("Admin", "Op", "User", "Viewer")


class User(_Model):
    """A user of the FAB auth manager (integration, production); the local env has no login."""

    username: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]{0,63}$")]
    role: Literal[FAB_ROLES]
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    first_name: str = Field(min_length=1, max_length=64)
    last_name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=12, repr=False)


class Airflow(_Model):
    keys: Keys = Field(default_factory=Keys)
    # Deployed environments: the metadata DB's SQLAlchemy URL (the platform chart's
    # `<release>-metadata` Secret). The local env and the tests bring their own database.
    metadata_connection: str | None = None
    # CeleryExecutor (deploy.yaml airflow.executor): the broker's URL (the platform chart's
    # `<release>-broker` Secret, the official chart's data.brokerUrlSecretName). Encrypted by sops.
    celery_broker_url: str | None = None
    connections: list[Connection] = Field(default_factory=list)
    variables: dict[Identifier, str] = Field(default_factory=dict)
    pools: list[Pool] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _unique_users(cls, value: list[User]) -> list[User]:
        for field in ("username", "email"):
            seen = [getattr(u, field) for u in value]
            twice = sorted({x for x in seen if seen.count(x) > 1})
            if twice:
                raise ValueError(f"{field} {', '.join(twice)} listed twice")
        return value

    @field_validator("variables", mode="before")
    @classmethod
    def _variables(cls, value: Any) -> Any:
        value = _json_object(value, "variables") if value is not None else {}
        if isinstance(value, dict):
            return {k: _variable_value(v) for k, v in value.items()}
        return value

    @field_validator("celery_broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        # The message never repeats the value: it is a secret.
        if value is not None and not (urlsplit(value).scheme and urlsplit(value).netloc):
            raise ValueError("not a broker URL (e.g. rediss://host:6379/0)")
        return value

    @field_validator("connections", "pools", "users", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


def _env_value(value: Any) -> Any:
    """Environment values are text; numbers and booleans (YAML scalars) are written as YAML reads them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class Project(_Model):
    """What seed 004 keeps per project: a ConfigMap (``config``) and a Secret (``secret``)."""

    config: dict[EnvName, str] = Field(default_factory=dict)
    secret: dict[EnvName, str] = Field(default_factory=dict)

    @field_validator("config", "secret", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {k: _env_value(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> Project:
        both = sorted(set(self.config) & set(self.secret))
        if both:
            raise ValueError(f"{', '.join(both)} in both config and secret (a pod would get one of them)")
        return self


class SettingsFile(_Model):
    airflow: Airflow
    projects: dict[ProjectName, Project] = Field(default_factory=dict)

    @field_validator("projects", mode="before")
    @classmethod
    def _no_projects(cls, value: Any) -> Any:
        return {} if value is None else value


class SettingsError(ConfigError):
    """Every problem of one file, one line each (``file: path: problem``)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


_extra_types: frozenset[str] = frozenset()


def set_extra_connection_types(types: list[str] | tuple[str, ...]) -> None:
    global _extra_types
    _extra_types = frozenset(types)


def _duplicates(data: Any, file: str) -> list[str]:
    """Duplicate connection ids and pool names (case-insensitive: env var names are upper-cased)."""
    lines = []
    airflow = data.get("airflow") if isinstance(data, dict) else None
    if not isinstance(airflow, dict):
        return lines
    for section, key in (("connections", "id"), ("pools", "name")):
        seen: dict[str, int] = {}
        items = airflow.get(section)
        for index, item in enumerate(items if isinstance(items, list) else []):
            name = item.get(key) if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name.lower() in seen:
                lines.append(f"{file}: airflow.{section}[{index}].{key}: duplicate {key} {name!r} "
                             f"(first at airflow.{section}[{seen[name.lower()]}])")
            else:
                seen[name.lower()] = index
    return lines


_PATTERN_MESSAGES = {
    IDENTIFIER: "must be a lowercase identifier ([a-z][a-z0-9_]*, at most 250)",
    PROJECT: "must be a DNS-1123 label (lowercase letters, digits and '-', at most 63): it names a ConfigMap",
    ENV_NAME: "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
}


def _pattern_message(err: dict) -> str:
    pattern = (err.get("ctx") or {}).get("pattern")
    return f"{err['input']!r} {_PATTERN_MESSAGES.get(pattern, f'must match {pattern}')}"


def parse_settings(data: Any, file: str) -> SettingsFile:
    """Validate decrypted settings; raise :class:`SettingsError` listing every problem."""
    lines: list[str] = []
    result = None
    try:
        result = SettingsFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = format_location("", tuple(err["loc"]))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "string_pattern_mismatch":
                message = _pattern_message(err)
            lines.append(f"{file}: {loc or '(top level)'}: {message}")
    lines += _duplicates(data, file)
    if lines:
        raise SettingsError(lines)
    assert result is not None
    return result


def is_identifier(name: str) -> bool:
    return re.match(IDENTIFIER, name) is not None
