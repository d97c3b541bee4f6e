"""The DAG bundle's pure parts: deploy refs, Airflow's bundle config, what a DAG-only deploy may ship."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from airstack import git_bundle
from airstack.deploy import dag_bundles
from airstack.settings.deploy_file import AirflowOptions, DagBundle
from airstack.localenv import bundle as local_bundle


def test_each_environment_and_preview_tracks_its_own_ref():
    assert git_bundle.deploy_ref("integration") == "airstack/dags/integration"
    assert git_bundle.deploy_ref("production") == "airstack/dags/production"
    # Never a prefix of another environment's ref (git refuses a ref inside another one).
    assert git_bundle.deploy_ref("integration", "airflow-x") == "airstack/dags/previews/airflow-x"


def test_the_config_list_is_a_git_bundle_on_the_ref():
    bundle = DagBundle(kind="git", repository="https://git.example/t/a.git", conn_id="git_dags", refresh_interval=15)
    (entry,) = git_bundle.config_list(bundle, "airstack/dags/integration", bundle.repository)
    assert entry == {"name": "dags", "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
                     "kwargs": {"repo_url": "https://git.example/t/a.git", "tracking_ref": "airstack/dags/integration",
                                "subdir": "dags", "refresh_interval": 15, "git_conn_id": "git_dags"}}
    env = git_bundle.config_env(bundle, "r", "u")
    assert json.loads(env[git_bundle.CONFIG_ENV])[0]["kwargs"]["tracking_ref"] == "r"


def test_a_path_repository_becomes_a_file_url_and_a_url_stays(tmp_path):
    assert git_bundle.remote_url(tmp_path, DagBundle(kind="git", repository=".airstack/dags.git")) == \
        (tmp_path / ".airstack" / "dags.git").resolve().as_uri()
    for url in ("https://git.example/a.git", "git@git.example:t/a.git", "ssh://git@git.example/a.git"):
        assert git_bundle.remote_url(tmp_path, DagBundle(kind="git", repository=url)) == url


def test_only_files_under_dags_ship_alone():
    assert dag_bundles.outside(["dags/a.py", "dags/tasks/x/run.py", "charts/airflow/values.yaml", "dagsx/y", ""]) == [
        "charts/airflow/values.yaml", "dagsx/y"]


def test_a_git_bundle_needs_its_repository():
    with pytest.raises(ValidationError, match="repository: a git bundle needs the remote"):
        DagBundle(kind="git")
    assert AirflowOptions().dag_bundle.kind == "local"  # the working tree, unless deploy.yaml says git


def test_the_local_env_gets_the_bundle_only_for_kind_git(tmp_path: Path):
    assert local_bundle.airflow_env(tmp_path, DagBundle()) == {}
    env = local_bundle.airflow_env(tmp_path, DagBundle(kind="git", repository="r.git", refresh_interval=2))
    (entry,) = json.loads(env[git_bundle.CONFIG_ENV])
    assert entry["kwargs"]["tracking_ref"] == "airstack/dags/local"
    assert entry["kwargs"]["repo_url"] == (tmp_path / "r.git").resolve().as_uri()
    assert env[local_bundle.STORAGE_ENV].startswith(str(tmp_path / ".airstack"))


def test_a_bundle_connection_must_exist_in_the_settings():
    from airstack.deploy.config import settings_problems
    from airstack.settings.deploy_file import DeployFile, Environment

    spec = DeployFile.model_validate({"images": {"registry": "r"}, "airflow": {"dag_bundle": {
        "kind": "git", "repository": "https://git.example/a.git", "conn_id": "git_dags"}}})
    env = Environment(name="integration", file="settings/integration/deploy.yaml", spec=spec)
    secret = {"airflow": {"connections": [{"id": "other"}]}}
    assert settings_problems(env, "settings/integration/secret.yaml", secret) == [
        "settings/integration/deploy.yaml: airflow.dag_bundle.conn_id: no connection 'git_dags' in "
        "settings/integration/secret.yaml"]
    secret["airflow"]["connections"].append({"id": "git_dags"})
    assert settings_problems(env, "settings/integration/secret.yaml", secret) == []


def test_a_deploy_refuses_the_working_tree_bundle():
    from airstack.deploy import dagdeploy
    from airstack.settings.deploy_file import DeployFile, Environment
    from airstack.errors import ConfigError

    env = Environment(name="integration", file="settings/integration/deploy.yaml",
                      spec=DeployFile.model_validate({"images": {"registry": "r"}}))
    with pytest.raises(ConfigError, match=r"^settings/integration/deploy.yaml: airflow.dag_bundle.kind: 'local': "):
        dagdeploy.bundle_of(env)
