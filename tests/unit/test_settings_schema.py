"""The settings schema: valid files pass; each kind of bad input is one line naming file, path and problem."""

import copy

import pytest

from airstack.settings.keys import new_fernet_key, new_secret
from airstack.settings.schema import SettingsError, parse_settings

FILE = "settings/test/secret.yaml"


def valid() -> dict:
    return {"airflow": {
        "keys": {"fernet_key": new_fernet_key(), "api_secret_key": new_secret(), "jwt_secret": new_secret()},
        "connections": [
            {"id": "warehouse_db", "type": "postgres", "host": "db", "port": 5432, "login": "u", "password": "p",
             "schema": "w", "extra": {"sslmode": "require"}},
            {"id": "api", "type": "http", "uri": "https://user:pw@api.example.com/v1"},
        ],
        "variables": {"threshold": "10", "config": {"a": [1, 2]}},
        "pools": [{"name": "warehouse", "slots": 4}],
    }}


def test_valid_file():
    settings = parse_settings(valid(), FILE).airflow
    assert [c.id for c in settings.connections] == ["warehouse_db", "api"]
    assert settings.variables == {"threshold": "10", "config": '{"a": [1, 2]}'}


def test_variables_as_a_json_string_still_accepted():
    data = valid()
    data["airflow"]["variables"] = '{"aws_default_region": " eu-west-1", "environment": "local"}'  # seed 000
    assert parse_settings(data, FILE).airflow.variables["aws_default_region"] == " eu-west-1"


def test_extra_as_json_string():
    data = valid()
    data["airflow"]["connections"][0]["extra"] = '{"sslmode": "verify-full"}'
    assert parse_settings(data, FILE).airflow.connections[0].extra == {"sslmode": "verify-full"}


def _set(data, path, value):
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()
A, C, P = ("airflow",), ("airflow", "connections"), ("airflow", "pools")
BAD = [
    ("unknown-type", C + (0, "type"), "s3x", "airflow.connections[0].type: unknown connection type 's3x'"),
    ("port-zero", C + (0, "port"), 0, "airflow.connections[0].port: Input should be greater than or equal to 1"),
    ("port-high", C + (0, "port"), 70000, "airflow.connections[0].port: Input should be less than or equal to 65535"),
    ("port-text", C + (0, "port"), "http", "airflow.connections[0].port: Input should be a valid integer"),
    ("extra-bad-json", C + (0, "extra"), "{nope", "airflow.connections[0].extra: extra is not valid JSON"),
    ("extra-json-list", C + (0, "extra"), "[1]", "airflow.connections[0].extra: extra must be a JSON object"),
    ("id-uppercase", C + (0, "id"), "Warehouse", "airflow.connections[0].id: 'Warehouse' must be a lowercase"),
    ("id-dash", C + (0, "id"), "ware-house", "airflow.connections[0].id: 'ware-house' must be a lowercase"),
    ("id-missing", C + (0, "id"), _DELETE, "airflow.connections[0].id: Field required"),
    ("unknown-conn-field", C + (0, "passwd"), "x", "airflow.connections[0].passwd: Extra inputs are not permitted"),
    ("uri-and-host", C + (1, "host"), "h", "airflow.connections[1]: give either uri or host, not both"),
    ("uri-no-scheme", C + (1, "uri"), "api.example.com", "airflow.connections[1]: uri has no scheme"),
    ("bad-fernet", A + ("keys", "fernet_key"), "not-a-key", "airflow.keys.fernet_key: not a Fernet key"),
    ("short-fernet", A + ("keys", "fernet_key"), "YWJj", "airflow.keys.fernet_key: not a Fernet key: decodes to 3"),
    ("short-jwt", A + ("keys", "jwt_secret"), "short", "airflow.keys.jwt_secret: String should have at least 32"),
    ("unknown-key", A + ("keys", "webserver_key"), "x", "airflow.keys.webserver_key: Extra inputs are not permitted"),
    ("unknown-top-level", ("extras",), {}, "extras: Extra inputs are not permitted"),
    ("unknown-airflow-key", A + ("groups",), [], "airflow.groups: Extra inputs are not permitted"),
    ("user-role", A + ("users",), [{"username": "ada", "role": "Root", "email": "a@x.io", "first_name": "A",
                                    "last_name": "L", "password": "p" * 12}], "airflow.users[0].role: Input should be"),
    ("user-short-password", A + ("users",), [{"username": "ada", "role": "Op", "email": "a@x.io", "first_name": "A",
                                              "last_name": "L", "password": "short"}],
     "airflow.users[0].password: String should have at least 12"),
    ("user-twice", A + ("users",), [{"username": "ada", "role": "Op", "email": f"{n}@x.io", "first_name": "A",
                                     "last_name": "L", "password": "p" * 12} for n in ("a", "b")],
     "airflow.users: username ada listed twice"),
    ("pool-slots", P + (0, "slots"), -2, "airflow.pools[0].slots: Input should be greater than or equal to -1"),
    ("variables-bad-json", A + ("variables",), "{x", "airflow.variables: variables is not valid JSON"),
    ("variable-name", A + ("variables",), {"Bad-Name": "1"}, "airflow.variables.Bad-Name.[key]: 'Bad-Name' must be"),
    ("connections-not-list", A + ("connections",), {"id": "x"}, "airflow.connections: Input should be a valid list"),
]


@pytest.mark.parametrize(("path", "value", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_names_file_and_field(path, value, expected):
    data = copy.deepcopy(valid())
    _set(data, path, value)
    with pytest.raises(SettingsError) as excinfo:
        parse_settings(data, FILE)
    assert len(excinfo.value.lines) == 1, excinfo.value.lines
    assert excinfo.value.lines[0].startswith(f"{FILE}: {expected}"), excinfo.value.lines[0]


def test_duplicate_ids_case_insensitive():
    data = valid()
    data["airflow"]["connections"].append({"id": "warehouse_db", "type": "postgres"})
    data["airflow"]["pools"].append({"name": "warehouse", "slots": 1})
    with pytest.raises(SettingsError) as excinfo:
        parse_settings(data, FILE)
    assert excinfo.value.lines == [
        f"{FILE}: airflow.connections[2].id: duplicate id 'warehouse_db' (first at airflow.connections[0])",
        f"{FILE}: airflow.pools[1].name: duplicate name 'warehouse' (first at airflow.pools[0])",
    ]


def test_all_errors_at_once():
    data = valid()
    data["airflow"]["connections"][0]["port"] = 0
    data["airflow"]["connections"][1]["type"] = "nope"
    data["airflow"]["keys"]["fernet_key"] = "bad"
    with pytest.raises(SettingsError) as excinfo:
        parse_settings(data, FILE)
    assert len(excinfo.value.lines) == 3


def test_missing_airflow_section():
    with pytest.raises(SettingsError, match=f"{FILE}: airflow: Field required"):
        parse_settings({}, FILE)


def test_fernet_key_for_airflow_lists_previous_keys():
    keys = parse_settings(valid(), FILE).airflow.keys
    rotated = keys.model_copy(update={"fernet_key_previous": [new_fernet_key()]})
    assert rotated.airflow_fernet_key() == f"{keys.fernet_key},{rotated.fernet_key_previous[0]}"
