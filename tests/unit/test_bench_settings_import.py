"""The settings-import benchmark's inputs: 50 + 50 valid items, the CLI's 100 processes, no value in our argv."""

from airstack.bench.settings_import import (
    SETTINGS_IMPORT_CHILD, settings_import_child_argv, settings_import_cli_argvs, settings_import_data,
)
from airstack.settings.schema import parse_settings


def test_data_is_valid_settings():
    settings = parse_settings(settings_import_data(), "bench").airflow
    assert len(settings.connections) == 50 and len(settings.variables) == 50
    assert settings.connections[0].id == "bench_conn_000" and settings.connections[0].type == "postgres"
    assert settings.variables["bench_var_007"] == "value 7"


def test_old_way_is_one_process_per_item():
    argvs = settings_import_cli_argvs(settings_import_data(), "/venv/bin/airflow")
    assert len(argvs) == 100
    assert argvs[0][:4] == ["/venv/bin/airflow", "connections", "add", "bench_conn_000"]
    assert argvs[-1] == ["/venv/bin/airflow", "variables", "set", "bench_var_049", "value 49"]


def test_whole_command_argv_carries_counts_only():
    argv = settings_import_child_argv()
    assert argv[1:] == ["-m", "airstack.bench", SETTINGS_IMPORT_CHILD, "50", "50"]
    data = settings_import_data()
    values = [c["password"] for c in data["airflow"]["connections"]] + list(data["airflow"]["variables"].values())
    assert not set(values) & set(argv)
