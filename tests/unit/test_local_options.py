"""The local env's options (--s3, --celery, --metrics): what they start and configure (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airstack.errors import ConfigError, LocalEnvError
from airstack.localenv import options as opts
from airstack.localenv.config import LocalConfig
from airstack.localenv.runtime import choose_runtime
from airstack.settings.deploy_file import AirflowOptions, Metrics, Store
from airstack.settings.schema import SettingsFile

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("settings/",)

PORTS = {"redis": 16379, "flower": 15555, "statsd": 18125, "metrics": 19102}


def _settings(endpoint="http://127.0.0.1:4566", login="key", password="secret") -> SettingsFile:
    conn = {"id": "aws_local", "type": "aws", "login": login, "password": password,
            "extra": {"endpoint_url": endpoint, "region_name": "eu-west-1"}}
    return SettingsFile.model_validate({"airflow": {"connections": [conn]}})


def _options(**kw) -> AirflowOptions:
    stores = {"remote_logging": Store(base="s3://airstack-local/logs", conn_id="aws_local"),
              "storage": Store(base="s3://airstack-data/x", conn_id="aws_local")}
    return AirflowOptions(executor="LocalExecutor", **{**stores, **kw})


def test_s3_standin_comes_from_settings_local():
    standin = opts.s3_standin(_options(), _settings())
    assert (standin.port, standin.endpoint, standin.region) == (4566, "http://127.0.0.1:4566", "eu-west-1")
    assert standin.buckets == ["airstack-data", "airstack-local"]
    assert "secret" not in repr(standin)  # the stand-in's key never lands in a log line


@pytest.mark.parametrize(("settings", "options", "message"), [
    (_settings(endpoint="http://10.0.0.5:4566"), _options(),
     "extra.endpoint_url: the S3 stand-in needs http://127.0.0.1"),
    (_settings(endpoint="https://s3.amazonaws.com"), _options(), "extra.endpoint_url"),
    (_settings(password=None), _options(), "airflow.connections[aws_local]: login and password"),
    (_settings(), _options(storage=None), "settings/local/deploy.yaml: airflow.storage: --s3 needs"),
    (_settings(), _options(storage=Store(base="s3://bkt/x", conn_id="other")), "airflow.storage.conn_id: use the same"),
    (_settings(), _options(storage=Store(base="s3://bkt/x", conn_id="nope"),
                           remote_logging=Store(base="s3://bkt/l", conn_id="nope")), "no connection 'nope'"),
])
def test_s3_standin_refuses_bad_settings_in_one_line(settings, options, message):
    with pytest.raises(ConfigError) as raised:
        opts.s3_standin(options, settings)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_options_env_per_flag(tmp_path):
    dsn = "postgresql+psycopg2://airflow@/airflow?host=/tmp/s&port=5433"
    plain = opts.airflow_env(opts.Options(ports=PORTS), tmp_path, dsn)
    assert plain == {"AIRSTACK_STORAGE_BASE": (tmp_path / "storage").as_uri()}  # default: the data folder

    everything = opts.Options(s3=opts.s3_standin(_options(), _settings()), celery=True, metrics=True, ports=PORTS)
    env = opts.airflow_env(everything, tmp_path, dsn)
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True"
    assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] == "s3://airstack-local/logs"
    assert env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"] == env["AIRSTACK_STORAGE_CONN_ID"] == "aws_local"
    assert env["AIRSTACK_STORAGE_BASE"] == "s3://airstack-data/x"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:16379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + dsn
    assert (env["AIRFLOW__METRICS__STATSD_ON"], env["AIRFLOW__METRICS__STATSD_PORT"]) == ("True", "18125")
    assert not any(v in ("key", "secret") for v in env.values())  # credentials stay in the connection


def test_every_option_server_binds_loopback():
    everything = opts.Options(s3=opts.s3_standin(_options(), _settings()), celery=True, metrics=True, ports=PORTS)
    assert everything.services == ["s3", "redis", "metrics", "celery-worker", "flower"]
    argv = {s: opts.service_argv(everything, s, "airflow", "/usr/bin/redis-server") for s in everything.services}
    assert argv["s3"][-4:] == ["-H", "127.0.0.1", "-p", "4566"]
    assert argv["redis"][:3] == ["/usr/bin/redis-server", "--bind", "127.0.0.1"]
    assert argv["metrics"][argv["metrics"].index("--host") + 1] == "127.0.0.1"
    assert argv["flower"][argv["flower"].index("--hostname") + 1] == "127.0.0.1"
    assert "--skip-serve-logs" in argv["celery-worker"]  # no log server on 0.0.0.0:8793
    assert {p for p, _, _ in opts.listen_ports(everything)} == {4566, 16379, 15555, 19102}
    assert everything.endpoints() == {"s3": "http://127.0.0.1:4566", "redis": "127.0.0.1:16379",
                                      "metrics": "127.0.0.1:19102/metrics, 127.0.0.1:18125/udp",
                                      "celery-worker": "-", "flower": "127.0.0.1:15555"}


def test_flags_or_local_deploy_yaml_switch_options_on():
    root = Path(__file__).resolve().parents[2]
    off = opts.resolve(root, _settings(), s3=False, celery=False, metrics=False, environ={})
    assert not off.any  # settings/local/deploy.yaml: LocalExecutor, no statsd
    on = opts.resolve(root, _settings(), s3=True, celery=True, metrics=True, environ={})
    assert on.services == ["s3", "redis", "metrics", "celery-worker", "flower"]
    assert on.ports == {"redis": 6379, "flower": 5555, "statsd": 8125, "metrics": 9102}


def test_options_refuse_the_docker_runtime(tmp_path):
    config = LocalConfig(tmp_path)
    wanted = opts.Options(celery=True, metrics=True, ports=PORTS)
    with pytest.raises(LocalEnvError, match=r"--celery, --metrics run in the native runtime.*--runtime native"):
        choose_runtime("docker", config, wanted)
    runtime, why = choose_runtime(None, config, wanted)  # nothing recorded: the options pick native
    assert runtime.name == "native" and "native runtime" in why


def test_metrics_options_default_off():
    assert Metrics() == Metrics(statsd=False, prometheus_rules=False)
