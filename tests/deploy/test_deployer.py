"""The deploy as a library (airstack/deploy/deployer.py): a frozen request in, the same deploy out, no command line
involved; against the recording `helm` stand-in (airstack/standins/helm.py) and the moto server."""

from __future__ import annotations

import dataclasses

import pytest

from airstack.deploy.deployer import Deployer
from airstack.deploy.request import DeployRequest
from airstack.errors import ConfigError


def _calls(helm_standin, verb: str) -> list[list[str]]:
    return [c["argv"] for c in helm_standin() if c["argv"][:1] == [verb]]


def test_a_request_deploys_without_a_command_line_and_a_plan_of_it_changes_nothing(deployable, helm_standin,
                                                                                   capsys):
    root, _ = deployable
    request = DeployRequest("integration", only="helm", yes=True)
    assert Deployer(root, request).run() == 0, capsys.readouterr().err
    assert [argv[2] for argv in _calls(helm_standin, "upgrade")] == ["airflow-platform", "airflow"]
    capsys.readouterr()
    plan = Deployer(root, dataclasses.replace(request, dry_run=True))
    assert plan.run() == 0
    out = capsys.readouterr().out
    assert "airflow-platform: no changes" in out and "airflow: no changes" in out and "planned (nothing changed)" in out
    assert len(_calls(helm_standin, "upgrade")) == 2, "a plan upgraded a release"


def test_the_checks_run_before_any_step_changes_anything(scratch_repo, helm_standin, monkeypatch):
    root, _ = scratch_repo
    deployer = Deployer(root, DeployRequest("production", preview=True, yes=True))
    monkeypatch.setattr(deployer, "ship", lambda: pytest.fail("images planned before the checks"))
    with pytest.raises(ConfigError, match="^settings/production/deploy.yaml: preview: environment production has no "
                                          "preview environments$"):
        deployer.run()
    assert helm_standin() == []


@pytest.mark.parametrize("request_, charts, stacks", [
    (DeployRequest("integration"), True, True),
    (DeployRequest("integration", only="cloudformation"), False, True),
    (DeployRequest("integration", only="helm"), True, False),
    (DeployRequest("integration", dags=True), False, False),
])
def test_which_parts_a_request_deploys(scratch_repo, request_, charts, stacks):
    root, _ = scratch_repo
    assert (Deployer(root, request_).charts, request_.stacks) == (charts, stacks)
