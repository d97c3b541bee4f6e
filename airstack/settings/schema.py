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
      auth:                      # optional: FAB's OIDC login (airstack/settings/oidc.py)
        oidc: {provider: sso, client_id: ..., client_secret: ..., server_metadata_url: https://...}
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

Exactness: what the file says is what Airflow gets, so the schema refuses what would change
on the way rather than converting it:
- types are strict (pydantic strict mode): no boolean where a number is due, no number
  where text is due, no null where a value is required;
- a variable is text (quote it) or a mapping/list (stored as JSON); a bare YAML number,
  boolean or ``~`` is refused, since YAML has already turned ``1e3`` into 1000 and ``yes``
  into true by the time anyone can look at it;
- integers must lie within ±2^53: JSON readers on the way (sops re-encrypting a file, the
  Airflow UI) hold numbers as doubles and would round them. Write bigger ones as strings;
- a whole number written as a float (``1.0``) in a variable's mapping or an ``extra`` mapping is
  refused: sops gives it back as ``1``, an int. Write ``1``, or keep ``1.0`` in a JSON string;
- no NUL character anywhere (Postgres text cannot hold one), JSON strings (``extra``, a
  JSON ``variables`` block) without duplicate keys, and the column limits of Airflow's
  metadata database;
- empty strings stay empty strings (``login: ""`` is not "no login").
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError,
                      field_validator, model_validator)

from airstack.config_files import problem_lines
from airstack.errors import ConfigError
from airstack.settings import broker_url
from airstack.settings.oidc import FAB_ROLES, Auth
from airstack.settings.values import (fernet_key_check, inexact, json_object, number_types, port_number,
                                      variable_value)
from airstack.settings.uri import parse_uri

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


# Airflow 3.3's metadata columns (airflow/models/connection.py, pool.py): String(n) limits, and
# Text(5000) for a connection's description on MySQL/SQLite (Postgres has no limit; we keep one).
HOST_MAX = SCHEMA_MAX = CONN_TYPE_MAX = 500
DESCRIPTION_MAX = 5000
INT32_MAX = 2**31 - 1  # Integer columns: a port, a pool's slots


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, strict=True)


Port = Annotated[int, BeforeValidator(port_number), Field(ge=1, le=65535)]


def _check_uri(uri: str) -> None:
    """What Airflow's URI parser would trip on or store differently, as a ValueError."""
    if any(ord(c) < 32 or ord(c) == 127 for c in uri):
        raise ValueError("uri contains a control character (a newline or tab?): remove it")
    scheme = urlsplit(uri).scheme
    if not scheme or "://" not in uri or not uri.startswith(f"{scheme}://"):
        raise ValueError("uri has no scheme (e.g. postgresql://user:pw@host:5432/db)")
    fields = parse_uri(uri)
    if fields["port"] == 0:
        raise ValueError("uri: the port must be a number from 1 to 65535")
    if len(fields["host"] or "") > HOST_MAX:
        raise ValueError(f"uri: the host is longer than {HOST_MAX} characters (Airflow's column limit)")
    if len(fields["schema"] or "") > SCHEMA_MAX:
        raise ValueError(f"uri: the path (Airflow's schema) is longer than {SCHEMA_MAX} characters (its column limit)")


class Connection(_Model):
    id: Identifier
    type: Annotated[str, Field(max_length=CONN_TYPE_MAX)]
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)] | None = None
    host: Annotated[str, Field(max_length=HOST_MAX)] | None = None
    port: Port | None = None
    login: str | None = None
    password: str | None = None
    schema_: Annotated[str, Field(max_length=SCHEMA_MAX)] | None = Field(None, alias="schema")
    extra: dict[str, Any] | None = None
    uri: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

    @field_validator("extra", mode="before")
    @classmethod
    def _extra(cls, value: Any) -> Any:
        value = json_object(value, "extra")
        return None if value == {} else value  # no extra: Airflow reads an empty one as none

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in KNOWN_CONNECTION_TYPES and value not in _extra_types:
            raise ValueError(f"unknown connection type {value!r} (add it to [tool.airstack.settings] "
                             "extra-connection-types in pyproject.toml if a provider defines it)")
        return value

    @model_validator(mode="after")
    def _uri_or_fields(self) -> Connection:
        if self.uri is not None:
            fields = [f for f in ("host", "port", "login", "password", "schema_") if getattr(self, f) is not None]
            if fields:
                raise ValueError(f"give either uri or {', '.join(f.rstrip('_') for f in fields)}, not both")
            _check_uri(self.uri)
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
    slots: int = Field(ge=-1, le=INT32_MAX, description="-1 means unlimited")
    description: str | None = None
    include_deferred: bool = False


class Keys(_Model):
    fernet_key: str | None = None
    fernet_key_previous: list[str] = Field(default_factory=list)
    api_secret_key: str | None = Field(None, min_length=32)
    jwt_secret: str | None = Field(None, min_length=32)

    @field_validator("fernet_key")
    @classmethod
    def _fernet_key(cls, value: str | None) -> str | None:
        return None if value is None else fernet_key_check(value)

    @field_validator("fernet_key_previous")
    @classmethod
    def _previous(cls, value: list[str]) -> list[str]:
        return [fernet_key_check(v) for v in value]

    def airflow_fernet_key(self) -> str | None:
        """``[core] fernet_key``: the current key first, then the ones still being rotated out."""
        if self.fernet_key is None:
            return None
        return ",".join([self.fernet_key, *self.fernet_key_previous])


VariableValue = Annotated[str, BeforeValidator(variable_value)]


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
    variables: dict[Identifier, VariableValue] = Field(default_factory=dict)
    pools: list[Pool] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    # FAB's login through an OpenID Connect provider (airstack/settings/oidc.py); none: passwords only.
    auth: Auth = Field(default_factory=Auth)

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
        return json_object(value, "variables") if value is not None else {}

    @field_validator("celery_broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        # The message never repeats the value: it is a secret.
        if value is not None and not (urlsplit(value).scheme and urlsplit(value).netloc):
            raise ValueError("not a broker URL (e.g. rediss://host:6379/0)")
        if value is not None and (wrong := broker_url.problems(value)):  # TLS and the AUTH token (docs/security.md)
            raise ValueError("; ".join(wrong))
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


def _message(err: dict) -> str:
    """pydantic's message, in the words of settings files."""
    if err["type"] == "string_pattern_mismatch":
        return _pattern_message(err)
    if err["type"] == "string_too_long":
        limit = (err.get("ctx") or {}).get("max_length")
        return f"longer than {limit} characters, Airflow's column limit: shorten it"
    if err["type"] == "int_type" and isinstance(err.get("input"), bool):
        return "a boolean where a number is due: write the number"
    return err["msg"].removeprefix("Value error, ")


def parse_settings(data: Any, file: str) -> SettingsFile:
    """Validate decrypted settings; raise :class:`SettingsError` listing every problem."""
    lines = [f"{file}: {where.lstrip('.') or '(top level)'}: {problem}" for where, problem in inexact(data)]
    lines += [f"{file}: {where}: {problem}" for where, problem in number_types(data)]
    result = None
    try:
        result = SettingsFile.model_validate(data)
    except ValidationError as exc:
        lines += problem_lines(file, exc, message=_message)
    lines += _duplicates(data, file)
    if lines:
        raise SettingsError(lines)
    assert result is not None
    return result


def is_identifier(name: str) -> bool:
    return re.match(IDENTIFIER, name) is not None
