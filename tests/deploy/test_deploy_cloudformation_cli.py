"""`deploy integration --only cloudformation` end to end on the moto server, through the session's entry point.

Moto quirks relied on (DESIGN.md): an identical template gives a FAILED change set saying it
"didn't contain changes" (the engine reports "no changes"); stacks are limited to registries
and logs because moto returns no outputs after execute_change_set, which the network ->
database chain needs (tests/deploy/test_cloudformation_deploy.py covers output feeding).
"""

from __future__ import annotations

import uuid

import boto3
import yaml

from airstack.cli import run_main
from airstack.deploy.main import main

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("infra/",)


def test_deploy_plan_and_destroy_integration_stacks(scratch_repo, aws_env, helm_standin, capsys):
    root, _ = scratch_repo
    prefix = f"airstack-{uuid.uuid4().hex[:8]}"
    path = root / "settings" / "integration" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    data["cloudformation"].update(stack_prefix=prefix, stacks=["registries", "logs"])
    path.write_text(yaml.safe_dump(data))
    params_path = root / data["cloudformation"]["parameters"]
    params = yaml.safe_load(params_path.read_text())
    for stack in ("registries", "logs"):
        params[stack]["EnvironmentName"] = prefix  # unique names on the shared moto server
    params["registries"]["RepositoryPrefix"] = prefix
    params_path.write_text(yaml.safe_dump(params))

    assert run_main(main, ["deploy", "integration", "--only", "cloudformation", "--yes"]) == 0, \
        capsys.readouterr().err
    cf = boto3.client("cloudformation")
    statuses = {s: cf.describe_stacks(StackName=f"{prefix}-{s}")["Stacks"][0]["StackStatus"]
                for s in ("registries", "logs")}
    assert statuses == {"registries": "CREATE_COMPLETE", "logs": "CREATE_COMPLETE"}
    repos = {r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]}
    assert {f"{prefix}/airflow", f"{prefix}/etl-basic", f"{prefix}/pandas-basic"} <= repos

    capsys.readouterr()
    assert run_main(main, ["plan", "integration", "--only", "cloudformation"]) == 0
    assert capsys.readouterr().out.count("no changes") == 2

    assert run_main(main, ["destroy", "integration", "--yes"]) == 0, capsys.readouterr().err
    assert [c["argv"][1] for c in helm_standin() if c["argv"][0] == "uninstall"] == ["airflow", "airflow-platform"]
    alive = {s["StackName"] for s in cf.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"}
    assert not {f"{prefix}-registries", f"{prefix}-logs"} & alive
