"""``python -m airstack.deploy`` argv -> one frozen request (airstack/deploy/main.py's parse; pure): what each verb
and option asks for, and one line per mistake, before anything is read or run."""

from __future__ import annotations

import dataclasses

import pytest

from airstack.cli import run_main
from airstack.deploy.main import main, parse
from airstack.deploy.request import DeployRequest, DestroyRequest
from airstack.errors import ConfigError


def test_plan_is_a_deploy_that_changes_nothing():
    assert parse(["plan", "integration"]) == DeployRequest("integration", dry_run=True)
    assert parse(["deploy", "integration"]) == DeployRequest("integration")
    assert parse(["deploy", "production", "--dry-run", "--yes"]) == DeployRequest("production", dry_run=True, yes=True)


def test_every_deploy_option_reaches_the_request():
    request = parse(["deploy", "integration", "--only", "helm", "--preview", "--branch", "feature/x", "--yes",
                     "--skip-unavailable-base"])
    assert request == DeployRequest("integration", only="helm", preview=True, branch="feature/x", yes=True,
                                    skip_unavailable_base=True)
    assert parse(["deploy", "integration", "--dags"]).dags is True


@pytest.mark.parametrize("argv, stacks", [
    (["deploy", "integration"], True),
    (["deploy", "integration", "--only", "cloudformation"], True),
    (["deploy", "integration", "--only", "helm"], False),
    (["deploy", "integration", "--preview"], False),  # a preview has no stacks of its own
    (["deploy", "integration", "--dags"], False),
])
def test_which_deploys_touch_the_stacks(argv, stacks):
    assert parse(argv).stacks is stacks


def test_destroy_requests_and_their_defaults():
    assert parse(["destroy", "integration"]) == DestroyRequest("integration")
    assert parse(["destroy", "integration", "--preview", "feature/x", "--yes"]) == \
        DestroyRequest("integration", preview="feature/x", yes=True)
    assert parse(["destroy", "integration", "--merged", "--remote", "up", "--base", "trunk", "--no-fetch",
                  "--dry-run"]) == DestroyRequest("integration", merged=True, remote="up", base="trunk", fetch=False,
                                                  dry_run=True)


@pytest.mark.parametrize("argv, message", [
    (["deploy", "integration", "--branch", "feature/x"], "--branch feature/x: only with --preview"),
    (["deploy", "integration", "--dags", "--only", "helm"], "--dags with --only helm:"),
    (["destroy", "integration", "--dry-run"], "--dry-run: only with --merged"),  # never a real destroy by mistake
    (["destroy", "integration", "--base", "trunk", "--no-fetch"], "--base, --no-fetch: only with --merged"),
    (["destroy", "integration", "--preview", "x", "--merged"], "not allowed with argument --preview"),
    (["deploy", "integration", "--only", "docker"], "invalid choice: 'docker'"),
    (["ship", "integration"], "invalid choice: 'ship'"),
    (["deploy"], "the following arguments are required: env"),
])
def test_each_mistake_is_one_line_and_nothing_runs(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("airstack.deploy.main.Deployer", lambda *a: pytest.fail("a deploy ran on a bad command line"))
    monkeypatch.setattr("airstack.deploy.main.destroy", lambda *a: pytest.fail("a destroy ran on a bad command line"))
    with pytest.raises(ConfigError, match="^[^\n]*$") as raised:
        parse(argv)
    assert message in str(raised.value)
    assert run_main(main, argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_a_request_cannot_change_between_steps():
    request = parse(["deploy", "integration"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.dry_run = True  # type: ignore[misc]
