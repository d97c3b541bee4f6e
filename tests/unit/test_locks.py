"""The Airflow runtime lock is the one source of versions: the dev lock agrees with it."""

import re

from airstack import paths
from airstack.upgrade.locks import LOCKS, compile_argv

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.M)


def _pins(name):
    text = (paths.repo_root() / "requirements" / name).read_text()
    return {k.lower().replace("_", "-"): v for k, v in PIN.findall(text)}, text


def test_runtime_lock_has_airflow_and_providers():
    pins, text = _pins("runtime.txt")
    assert pins["apache-airflow"] == "3.3.2"
    for provider in ("standard", "postgres", "cncf-kubernetes"):
        assert f"apache-airflow-providers-{provider}" in pins
    assert "--hash=sha256:" in text, "the lock pins hashes"


def test_dev_lock_agrees_with_runtime_lock():
    runtime, _ = _pins("runtime.txt")
    dev, _ = _pins("dev.txt")
    missing = sorted(set(runtime) - set(dev))
    differ = {k: (runtime[k], dev[k]) for k in runtime if k in dev and runtime[k] != dev[k]}
    assert not missing and not differ, f"dev.txt lacks {missing}, differs on {differ}: run `nox -s lock`"


def test_overrides_are_the_locked_pins_and_every_install_applies_them():
    """requirements/overrides.txt only lets the lock's own pin win; each place that installs
    the runtime or dev lock passes it (without it, uv refuses botocore next to dateutil 4)."""
    root = paths.repo_root()
    overrides = dict(PIN.findall((root / "requirements" / "overrides.txt").read_text()))
    runtime, _ = _pins("runtime.txt")
    assert overrides and all(runtime[name] == version for name, version in overrides.items())
    assert "botocore" in runtime and "apache-airflow-providers-amazon" in runtime
    dockerfile = (root / "images" / "airflow" / "Dockerfile").read_text()
    assert "-r /tmp/runtime.txt" in dockerfile and "--override /tmp/overrides.txt" in dockerfile
    noxfile = (root / "noxfile.py").read_text()
    assert 'OVERRIDES = ("--override", "requirements/overrides.txt")' in noxfile
    # shared_python installs the dev lock for the tests and every operational session.
    installs = [line for line in noxfile.splitlines() if '"-r"' in line and "install" in line]
    assert installs and all("*OVERRIDES" in line for line in installs), installs
    # No session has an environment of its own (lint included): nothing installs but shared_python.
    assert [line for line in noxfile.splitlines() if "session.install(" in line] == []
    # `nox -s lock` and `nox -s upgrade` compile with airstack/upgrade/locks.py's one command.
    assert 'airstack(session, "upgrade.locks"' in noxfile
    assert LOCKS == ("runtime", "dev")
    for name in LOCKS:
        argv = compile_argv(["uv"], name)
        assert argv[argv.index("--override") + 1] == "requirements/overrides.txt"
