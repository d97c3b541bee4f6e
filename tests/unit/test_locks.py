"""The Airflow runtime lock is the one source of versions: the dev lock agrees with it."""

import re

from airstack import paths

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
