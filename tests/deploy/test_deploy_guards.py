"""Production's guards, each on its own and through `deploy production` (nothing may change when one fails)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airstack import proc
from airstack.cli import run_main
from airstack.deploy import guards
from airstack.deploy.main import main

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("settings/",)


def git(root: Path, *args: str) -> str:
    return proc.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=root).stdout


@pytest.fixture()
def repo(scratch_repo, monkeypatch):
    """The scratch repository as a git checkout on main, everything committed."""
    root, _ = scratch_repo
    monkeypatch.delenv("CI", raising=False)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--allow-empty", "-m", "initial")  # scratch_repo may have committed
    return root


def test_clean_tree(repo):
    assert guards.clean_tree(repo) is None
    (repo / "dags" / "new_dag.py").write_text("# not committed\n")
    assert guards.clean_tree(repo) == ("the git tree has uncommitted changes (dags/new_dag.py): production "
                                       "deploys only committed code")


def test_main_or_a_tag(repo):
    assert guards.release_ref(repo) is None
    git(repo, "checkout", "--quiet", "-b", "feature/x")
    assert "HEAD is branch feature/x: production deploys from main or a tagged commit" == guards.release_ref(repo)
    git(repo, "tag", "v1.2.3")
    assert guards.release_ref(repo) is None, "a tagged commit may be deployed from any branch"
    git(repo, "checkout", "--quiet", "--detach")
    git(repo, "tag", "-d", "v1.2.3")
    assert "a detached commit" in guards.release_ref(repo)


def test_settings_must_be_encrypted(repo):
    assert guards.settings_encrypted(repo, "production") is None  # the committed file is sops-encrypted
    (repo / "settings" / "production" / "secret.yaml").write_text("airflow:\n  keys: {fernet_key: plain}\n")
    assert "settings/production/secret.yaml is not sops-encrypted" in guards.settings_encrypted(repo, "production")


def test_images_must_be_pushed():
    assert guards.images_pushed([], "reg") is None
    assert guards.images_pushed(["etl-basic", "airflow"], "reg/x") == (
        "images not in reg/x: airflow, etl-basic: push them from CI (nox -s push-images -- --env ENV) before "
        "deploying production")


def test_no_prompt_without_a_terminal():
    assert guards.interactive(True, lambda: False, {"CI": "true"}) is None
    assert guards.interactive(False, lambda: True, {}) is None
    for isatty, environ in ((lambda: False, {}), (lambda: True, {"CI": "true"})):
        assert "not interactive" in guards.interactive(False, isatty, environ)


def test_deploy_production_refuses_with_every_reason_and_changes_nothing(repo, helm_standin, capsys, monkeypatch):
    monkeypatch.setenv("CI", "true")
    git(repo, "checkout", "--quiet", "-b", "feature/x")
    (repo / "settings" / "production" / "secret.yaml").write_text("airflow: {}\n")  # decrypted by mistake
    assert run_main(main, ["deploy", "production"]) == 1
    err = capsys.readouterr().err
    for reason in ("the git tree has uncommitted changes (settings/production/secret.yaml)",
                   "HEAD is branch feature/x", "settings/production/secret.yaml is not sops-encrypted",
                   "not interactive"):
        assert f"error: production is protected: {reason}" in err, err
    assert helm_standin() == [], "a guard failed: Helm was never called"


def test_production_needs_its_images_pushed(repo, helm_standin, docker_or_skip, capsys):
    """A protected environment that promotes from none (no release.promote_from) deploys only pushed images
    (production's promotion is tests/deploy/test_promotion.py)."""
    import yaml

    shutil.rmtree(repo / "images" / "pandas-basic")  # conda channels are unreachable here
    path = repo / "settings" / "production" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    del data["release"]
    data["images"]["registry"] = "127.0.0.1:5000/airstack-never-pushed"
    path.write_text(yaml.safe_dump(data))
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "registry")
    assert run_main(main, ["deploy", "production", "--yes", "--only", "helm"]) == 1
    err = capsys.readouterr().err
    assert "error: production is protected: images not in 127.0.0.1:5000/airstack-never-pushed: airflow" in err
    assert helm_standin() == []


def test_destroy_refuses_production(repo, capsys):
    assert run_main(main, ["destroy", "production", "--yes"]) == 1
    assert "production is protected: destroy is for integration and preview environments only" in \
        capsys.readouterr().err


def test_production_dry_run_against_the_standins_with_kms_on_moto(docker_or_skip, capfd, monkeypatch):
    """What `nox -s ci` runs for deploy-production: a scratch checkout on main whose production settings sops
    encrypts to an age key and to a KMS key on the moto server (a real KMS round trip through sops), the guards,
    CloudFormation change sets (moto; stacks after network are "not planned": no outputs without a deploy), the
    charts through the helm stand-in. Nothing is applied: --dry-run."""
    import os

    from airstack.deploy import replay

    monkeypatch.setattr(os, "environ", os.environ.copy())  # main() points this process at the moto server
    assert replay.main(["production", "--yes"]) == 0
    out = capfd.readouterr().out
    assert "production: planned (nothing changed)" in out
    assert "airflow-production-network" in out and "airflow-platform: not installed yet" in out
