"""The schema refuses what would not reach Airflow unchanged, one line each; what it accepts stays exact."""

from __future__ import annotations

import copy
import json

import pytest

from airstack.settings import render
from airstack.settings.fields import connection_fields
from airstack.settings.values import EXACT_INT
from airstack.settings.schema import SettingsError, parse_settings
from tests.unit.test_settings_schema import valid

FILE = "settings/unit/secret.yaml"


def _refusal(mutate) -> str:
    data = copy.deepcopy(valid())
    mutate(data["airflow"])
    with pytest.raises(SettingsError) as excinfo:
        parse_settings(data, FILE)
    assert len(excinfo.value.lines) == 1, excinfo.value.lines
    return excinfo.value.lines[0]


def _conn(**fields):
    return lambda a: a["connections"][0].update(fields)


def _uri(uri):
    return lambda a: a["connections"][1].update(uri=uri)


# (mutation, the line's start after the file name, a phrase of what to do)
REFUSED = {
    "port-true": (_conn(port=True), "airflow.connections[0].port:", "boolean where a number is due"),
    "port-as-text": (_conn(port="5432"), "airflow.connections[0].port:", "valid integer"),
    "slots-false": (lambda a: a["pools"][0].update(slots=False), "airflow.pools[0].slots:", "boolean"),
    "slots-over-int32": (lambda a: a["pools"][0].update(slots=2**31), "airflow.pools[0].slots:", "2147483647"),
    "deferred-as-text": (lambda a: a["pools"][0].update(include_deferred="yes"), "airflow.pools[0].include_deferred:",
                         "valid boolean"),
    "variable-null": (lambda a: a["variables"].update(cutoff=None), "airflow.variables.cutoff:", '"" for an empty'),
    "variable-bare-float": (lambda a: a["variables"].update(ratio=2.5), "airflow.variables.ratio:", "quote it"),
    "variable-bare-int": (lambda a: a["variables"].update(limit=1000), "airflow.variables.limit:", "quote it"),
    "variable-bare-bool": (lambda a: a["variables"].update(enabled=False), "airflow.variables.enabled:", "quote it"),
    "variable-nul": (lambda a: a["variables"].update(token="ab\x00cd"), "airflow.variables.token:", "NUL"),
    "login-nul": (_conn(login="etl\x00"), "airflow.connections[0].login:", "NUL"),
    "extra-nul-key": (_conn(extra={"a\x00b": "x"}), "airflow.connections[0].extra:", "NUL"),
    "nested-big-int": (lambda a: a["variables"].update(ids={"max": [1, EXACT_INT + 1]}),
                       "airflow.variables.ids.max[1]:", "write it as a string"),
    "negative-big-int": (lambda a: a["variables"].update(low={"v": -(2**63)}), "airflow.variables.low.v:", "±2^53"),
    "variable-whole-float": (lambda a: a["variables"].update(cfg={"ratio": 1.0}), "airflow.variables.cfg.ratio:",
                             "sops gives back as 1, an int"),
    "nested-whole-float": (lambda a: a["variables"].update(cfg={"l": [0.5, -3.0]}), "airflow.variables.cfg.l[1]:",
                           "write -3"),
    "extra-whole-float": (_conn(extra={"timeout": 30.0}), "airflow.connections[0].extra.timeout:", "write 30"),
    "extra-json-big-int": (_conn(extra='{"account": 12345678901234567890}'), "airflow.connections[0].extra:",
                           "±2^53"),
    "extra-json-duplicate": (_conn(extra='{"region": "eu", "role": "r", "region": "us"}'),
                             "airflow.connections[0].extra:", "duplicate key 'region'"),
    "extra-json-nan": (_conn(extra='{"rate": NaN}'), "airflow.connections[0].extra:", "NaN is not a JSON number"),
    "variables-json-duplicate": (lambda a: a.update(variables='{"stage": "a", "stage": "b"}'),
                                 "airflow.variables:", "duplicate key 'stage'"),
    "variables-json-number": (lambda a: a.update(variables='{"n": 3}'), "airflow.variables.n:", "quote it"),
    "host-over-column": (_conn(host="h" * 501), "airflow.connections[0].host:", "Airflow's column limit"),
    "schema-over-column": (_conn(schema="s" * 501), "airflow.connections[0].schema:", "column limit"),
    "description-over-column": (_conn(description="d" * 5001), "airflow.connections[0].description:",
                                "longer than 5000"),
    "login-null-is-fine-but-list-is-not": (_conn(login=["etl"]), "airflow.connections[0].login:", "valid string"),
    "uri-port-over": (_uri("https://api.example.com:65536/v1"), "airflow.connections[1]:", "port must be a number"),
    "uri-port-letters": (_uri("https://api.example.com:8o8o/v1"), "airflow.connections[1]:", "port must be"),
    "uri-port-zero": (_uri("https://api.example.com:0/"), "airflow.connections[1]:", "port must be"),
    "uri-scheme-space": (_uri("ht tp://api.example.com"), "airflow.connections[1]:", "no scheme"),
    "uri-three-schemes": (_uri("a://b://c://d"), "airflow.connections[1]:", "more than two '://'"),
    "uri-protocol-credentials": (_uri("http://u:p@x://host"), "airflow.connections[1]:", "may not hold '@'"),
    "uri-protocol-is-scheme": (_uri("spark://spark://master:7077"), "airflow.connections[1]:", "Airflow cannot parse"),
    "uri-newline": (_uri("https://api.example.com/\nv1"), "airflow.connections[1]:", "control character"),
    "uri-extra-not-object": (_uri("https://h/?__extra__=%5B1%5D"), "airflow.connections[1]:", "JSON object"),
    "uri-host-over-column": (_uri("https://" + "h" * 501 + ".example/"), "airflow.connections[1]:", "column limit"),
    "fernet-as-number": (lambda a: a["keys"].update(fernet_key=12345), "airflow.keys.fernet_key:", "valid string"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_in_one_line_naming_the_field(name):
    mutate, where, advice = REFUSED[name]
    line = _refusal(mutate)
    assert line.startswith(f"{FILE}: {where} "), line
    assert advice in line, line
    assert "\n" not in line


def test_a_refusal_never_repeats_a_secret_value():
    line = _refusal(_conn(password="hunter2-\x00-secret"))
    assert "hunter2" not in line and "NUL" in line


def test_what_is_accepted_stays_exact():
    data = valid()
    conn = data["airflow"]["connections"][0]
    conn.update(login="", password="", host="", schema="", description="", port=5432.0)
    data["airflow"]["pools"][0]["description"] = ""
    data["airflow"]["variables"] = {"empty": "", "edge": {"max": EXACT_INT, "min": -EXACT_INT, "f": 0.1},
                                    "text_1e3": "1e3", "text_yes": "yes"}
    settings = parse_settings(data, FILE).airflow
    fields = connection_fields(settings.connections[0])
    assert {k: fields[k] for k in ("login", "password", "host", "schema", "description")} == dict.fromkeys(
        ("login", "password", "host", "schema", "description"), "")
    assert fields["port"] == 5432 and type(fields["port"]) is int
    assert settings.pools[0].description == ""
    assert settings.variables["empty"] == "" and settings.variables["text_1e3"] == "1e3"
    assert json.loads(settings.variables["edge"]) == {"max": EXACT_INT, "min": -EXACT_INT, "f": 0.1}


def test_an_absent_field_is_none_not_empty():
    data = valid()
    data["airflow"]["pools"][0].pop("description", None)
    data["airflow"]["connections"][0].pop("login")
    settings = parse_settings(data, FILE).airflow
    assert settings.pools[0].description is None and connection_fields(settings.connections[0])["login"] is None


# ------------------------------------------------------------------------------ render --
def _render_refusal(**variables) -> list[str]:
    data = valid()
    data["airflow"]["variables"] = variables
    settings = parse_settings(data, FILE).airflow
    with pytest.raises(render.RenderError) as excinfo:
        render.k8s_secrets(settings, "unit")
    return str(excinfo.value).splitlines()


def test_render_refuses_values_an_environment_variable_cannot_carry():
    just_fits = "x" * (render.MAX_ARG_STRLEN - len("AIRFLOW_VAR_FITS=") - 1)  # the terminating NUL counts
    too_long = "x" * (render.MAX_ARG_STRLEN - len("AIRFLOW_VAR_TOO_LONG=") - 1 + 1)  # one byte over
    lines = _render_refusal(fits=just_fits, too_long=too_long, certificate="-" * 200_000)
    assert lines == [
        f"settings/unit/secret.yaml: airflow.variables.too_long: {render.MAX_ARG_STRLEN + 1} bytes as "
        "AIRFLOW_VAR_TOO_LONG, over Linux's 128 KiB limit for one environment variable (a pod given it would not "
        "start): keep the value in a file or a secrets backend, and put its path here",
        f"settings/unit/secret.yaml: airflow.variables.certificate: {len('AIRFLOW_VAR_CERTIFICATE=') + 200_001} "
        "bytes as AIRFLOW_VAR_CERTIFICATE, over Linux's 128 KiB limit for one environment variable (a pod given it "
        "would not start): keep the value in a file or a secrets backend, and put its path here",
    ]


def test_render_counts_bytes_not_characters():
    # 3 bytes per character in UTF-8: 50,000 characters are 150,000 bytes.
    assert _render_refusal(label="€" * 50_000)[0].startswith("settings/unit/secret.yaml: airflow.variables.label: ")


def test_a_large_connection_is_named_by_its_index():
    data = valid()
    data["airflow"]["connections"][0]["password"] = "p" * 140_000
    settings = parse_settings(data, FILE).airflow
    with pytest.raises(render.RenderError, match=r"^settings/unit/secret.yaml: airflow.connections\[0\]: "):
        render.env_data(settings, "settings/unit/secret.yaml")


def test_json_strings_keep_their_floats_and_sops_tags_restore_them():
    """A whole float inside a JSON string is text to sops (kept); a file's float tags put the lost ones back."""
    from airstack.settings import edited

    data = valid()
    data["airflow"]["variables"]["cfg"] = '{"ratio": 1.0}'
    assert json.loads(parse_settings(data, FILE).airflow.variables["cfg"]) == {"ratio": 1.0}
    stored = {"a": "ENC[AES256_GCM,data:gw==,iv:x,tag:y,type:float]",
              "b": "ENC[AES256_GCM,data:Ng==,iv:x,tag:y,type:int]", "c": [1.0, 2], "d": True}
    restored = edited.as_written(stored, {"a": 1, "b": 1, "c": [1, 2], "d": True, "e": 3})
    assert restored == {"a": 1.0, "b": 1, "c": [1.0, 2], "d": True, "e": 3}
    assert [type(restored[k]) for k in "ab"] == [float, int] and type(restored["c"][1]) is int
