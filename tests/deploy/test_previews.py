"""`destroy ENV --merged`: previews whose branch is merged or gone are removed, the others kept.

Git is real (a scratch clone of a bare "origin" with scratch commits, merges and deleted
branches); Helm and the cluster are the recording stand-in (airstack/standins/helm.py), whose
"installed" releases are made with `helm upgrade --install` as a deploy makes them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airstack import proc
from airstack.cli import run_main
from airstack.deploy import config, previews
from airstack.deploy.main import main

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"]


# ----------------------------------------------------------------------------- pure --
def test_stale_previews_are_the_merged_and_the_gone():
    branches = {"main": False, "feature/open": False, "feature/done": True}
    namespaces = {config.preview_name(b) for b in ("feature/open", "feature/done", "feature/deleted")}
    found = previews.stale(namespaces, branches, "main")
    assert {(s.namespace, s.reason) for s in found} == {
        (config.preview_name("feature/done"), "branch feature/done is merged into main"),
        (config.preview_name("feature/deleted"), "no branch on the remote names it (deleted, or renamed)")}


def test_only_preview_namespaces_count():
    releases = [previews.Release("airflow", "airflow"), previews.Release("airflow-platform", "airflow"),
                previews.Release("airflow-x", "airflow-x"), previews.Release("airflow-x-platform", "airflow-x"),
                previews.Release("grafana", "monitoring"), previews.Release("airflow-y", "other-namespace")]
    assert previews.preview_namespaces(releases, main_namespace="airflow") == {"airflow-x"}


# ------------------------------------------------------------------------ the flow --
def git(cwd: Path, *args: str) -> str:
    return proc.run([*GIT, *args], cwd=cwd, timeout=60).stdout


def commit(repo: Path, name: str) -> None:
    (repo / f"{name.replace('/', '-')}.txt").write_text(name + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", name)


@pytest.fixture()
def cloned(scratch_repo, tmp_path):
    """The scratch repository as a clone of a bare origin holding main and three branches:
    feature/merged (merged into main), feature/open (not merged), feature/gone (deleted on origin)."""
    root, _ = scratch_repo
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(origin))
    git(root, "init", "--quiet")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--allow-empty", "-m", "main")
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "--quiet", "origin", "main")
    for branch in ("feature/merged", "feature/open", "feature/gone"):
        git(root, "checkout", "--quiet", "-b", branch, "main")
        commit(root, branch)
        git(root, "push", "--quiet", "origin", branch)
    git(root, "checkout", "--quiet", "main")
    git(root, "merge", "--quiet", "--no-ff", "-m", "merge", "feature/merged")
    git(root, "push", "--quiet", "origin", "main")
    git(root, "push", "--quiet", "origin", "--delete", "feature/gone")
    return root


def install(helm: str, name: str, namespace: str) -> None:
    """A release as `helm upgrade --install` leaves it (in the stand-in's cluster)."""
    proc.run([helm, "upgrade", "--install", name, "airflow", "--repo", "https://airflow.apache.org", "--namespace",
              namespace, "--kube-context", "airflow-integration"], timeout=60)


@pytest.fixture()
def deployed(cloned, helm_standin, preview_aws):
    """integration and three previews installed, each preview's service accounts with the preview role."""
    helm = shutil.which("helm")
    install(helm, "airflow", "airflow")
    install(helm, "airflow-platform", "airflow")
    for branch in ("feature/merged", "feature/open", "feature/gone"):
        name = config.preview_name(branch)
        install(helm, name, name)
        install(helm, f"{name}-platform", name)
        preview_aws.create_pod_identity_association("airflow-integration", name, f"{name}-worker", "role", {})
    return helm_standin


def uninstalled(calls) -> list[tuple[str, str]]:
    return [(c["argv"][1], c["argv"][c["argv"].index("--namespace") + 1]) for c in calls()
            if c["argv"][:1] == ["uninstall"]]


def test_destroy_merged_removes_the_previews_of_merged_and_gone_branches(cloned, deployed, preview_aws, capsys):
    assert run_main(main, ["destroy", "integration", "--merged", "--dry-run"]) == 0
    out = capsys.readouterr().out
    merged, gone, kept = (config.preview_name(b) for b in ("feature/merged", "feature/gone", "feature/open"))
    assert f"{merged}: branch feature/merged is merged into main" in out and f"{gone}: no branch" in out
    assert kept not in out and uninstalled(deployed) == []

    assert run_main(main, ["destroy", "integration", "--merged", "--yes"]) == 0
    assert sorted(uninstalled(deployed)) == sorted([(merged, merged), (f"{merged}-platform", merged),
                                                    (gone, gone), (f"{gone}-platform", gone)])
    listed = {p.parent.name for p in Path(os.environ["HELM_STANDIN_STATE"]).glob("releases/airflow-integration/*/*")}
    assert listed == {"airflow", kept}, "integration's own release and the open branch's preview stay"
    assert {a["namespace"] for a in preview_aws.associations.values()} == {kept}, "their pod identities go too"

    capsys.readouterr()
    assert run_main(main, ["destroy", "integration", "--merged", "--yes"]) == 0
    assert "no preview to remove" in capsys.readouterr().out


def test_destroy_merged_needs_the_base_branch(cloned, deployed, capsys):
    assert run_main(main, ["destroy", "integration", "--merged", "--base", "trunk", "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "origin/trunk does not exist" in err[0], err
    assert uninstalled(deployed) == []


def test_destroy_merged_refuses_production(scratch_repo, capsys):
    assert run_main(main, ["destroy", "production", "--merged", "--yes"]) == 1
    assert "production is protected" in capsys.readouterr().err
