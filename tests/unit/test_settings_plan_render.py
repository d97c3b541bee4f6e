import base64
import json

import kubernetes_validate
import pytest

from airstack.settings import keys, render
from airstack.settings.plan import State, changes, plan
from airstack.settings.schema import parse_settings
from tests.unit.test_settings_schema import valid

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("settings/",)


def test_plan_add_change_unchanged_remove():
    desired = State(connections={"a": {"host": "h", "password": "new"}, "b": {"host": "x"}},
                    variables={"v": "1", "w": "2"}, pools={"p": {"slots": 2}})
    current = State(connections={"a": {"host": "h", "password": "old"}, "gone": {"host": "y"}},
                    variables={"v": "1", "old": "0"}, pools={"p": {"slots": 1}, "default_pool": {"slots": 128}})
    actions = {(a.kind, a.name): (a.action, a.fields) for a in plan(desired, current, prune=True)}
    assert actions == {
        ("connection", "a"): ("change", ("password",)), ("connection", "b"): ("add", ()),
        ("connection", "gone"): ("remove", ()), ("variable", "v"): ("unchanged", ()),
        ("variable", "w"): ("add", ()), ("variable", "old"): ("remove", ()), ("pool", "p"): ("change", ("slots",)),
    }  # default_pool is never removed


def test_plan_without_prune_keeps_extras_and_second_run_is_empty():
    desired = State(variables={"v": "1"})
    assert [a.action for a in plan(desired, State(variables={"v": "1", "x": "2"}))] == ["unchanged"]
    assert changes(plan(desired, desired)) == []


@pytest.fixture()
def settings():
    return parse_settings(valid(), "settings/test/secret.yaml").airflow


def test_render_secrets_are_valid_kubernetes(settings):
    documents = render.k8s_secrets(settings, "test", release="airflow", namespace="data")
    for doc in documents:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    keys_secret, env_secret = documents
    decoded = {k: base64.b64decode(v).decode() for k, v in env_secret["data"].items()}
    assert json.loads(decoded["AIRFLOW_CONN_WAREHOUSE_DB"]) == {
        "conn_type": "postgres", "host": "db", "port": 5432, "login": "u", "password": "p", "schema": "w",
        "extra": {"sslmode": "require"}}
    # A URI connection is rendered as the fields the database gets (the file's type, not the URI's scheme).
    assert json.loads(decoded["AIRFLOW_CONN_API"]) == {
        "conn_type": "http", "host": "api.example.com", "login": "user", "password": "pw", "schema": "v1"}
    assert decoded["AIRFLOW_VAR_THRESHOLD"] == "10"
    assert set(keys_secret["data"]) == {"fernet-key", "api-secret-key", "jwt-secret"}


def test_render_validation_is_strict(settings):
    doc = render.k8s_secrets(settings, "test")[0]
    doc["metadata"]["name"] = "Not_A_DNS_Name"
    doc["data"]["fernet-key"] = 12
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_chart_values_point_at_the_rendered_secrets():
    values = render.chart_values("airflow")
    assert values["fernetKeySecretName"] == values["apiSecretKeySecretName"] == values["jwtSecretName"] \
        == "airflow-settings-keys"
    assert "airflow-settings-env" in values["extraEnvFrom"]


def test_rotation_keeps_old_key_readable():
    original = parse_settings(valid(), "f").airflow.keys
    rotated = keys.rotate_fernet(original)
    assert rotated.fernet_key != original.fernet_key and rotated.fernet_key_previous == [original.fernet_key]
    assert keys.finish_rotation(rotated).fernet_key_previous == []


def test_fill_missing_never_replaces_a_key():
    original = parse_settings(valid(), "f").airflow.keys
    filled, added = keys.fill_missing(original)
    assert filled == original and added == []
    empty, added = keys.fill_missing(original.model_copy(update={"jwt_secret": None}))
    assert added == ["jwt_secret"] and empty.fernet_key == original.fernet_key
