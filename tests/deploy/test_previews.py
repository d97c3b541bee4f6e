"""`destroy ENV --merged`: previews whose branch is merged or gone are removed, the others kept.

Git is real (a scratch clone of a bare "origin" with scratch commits, merges and deleted
branches, and a bare DAG bundle remote holding the deploy refs); Helm, kubectl and the cluster are the
recording stand-ins (airstack/standins/helm.py, kubectl.py), whose "installed" releases are made with
`helm upgrade --install` as a deploy makes them; S3 is the moto server; each preview's database and
role are on a real Postgres (the tests' `postgres`, as integration's metadata server).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airstack import proc
from airstack.cli import run_main
from airstack.deploy import config, preview_db, previews
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


BRANCHES = ("feature/merged", "feature/open", "feature/gone")
FILE = "settings/integration/secret.yaml"


def _s3():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="eu-west-1")


def _bucket(s3, name: str, versioned: bool) -> None:
    try:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass  # the moto server lives for the whole test session
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def _versions(s3, bucket: str, prefix: str) -> list[str]:
    """Every version and delete marker under ``prefix``, as ``key@version``."""
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        found += [f"{v['Key']}@{v['VersionId']}" for f in ("Versions", "DeleteMarkers") for v in page.get(f) or []]
    return found


def _writes(s3, base: str) -> None:
    """What a preview's (or integration's) pods leave under a store: a log written twice (two versions in a
    versioned bucket), and a file written, then deleted (a delete marker)."""
    bucket, _, prefix = base.removeprefix("s3://").partition("/")
    for key, body in ((f"{prefix}/dag_id=etl/attempt=1.log", b"one"), (f"{prefix}/dag_id=etl/attempt=1.log", b"two"),
                      (f"{prefix}/gone.parquet", b"x")):
        s3.put_object(Bucket=bucket, Key=key.lstrip("/"), Body=body)
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/gone.parquet".lstrip("/"))


@pytest.fixture()
def deployed(preview_server, cloned, helm_standin, preview_aws):
    """integration and three previews, each with everything `deploy --preview` makes: releases, a namespace,
    pod identities, a database and role on the real Postgres, a deploy ref on the DAG bundle's (bare git) remote,
    and objects (several versions, a delete marker) under its prefix of both buckets on the moto server;
    integration has its releases, ref and objects too, and a neighbour prefix (`<preview>x/`) holds one object."""
    from airstack import git_bundle
    from airstack.deploy import target
    from airstack.deploy.replay import dags_remote

    url, _ = preview_server
    env = config.load(cloned, "integration")
    helm, s3, options = shutil.which("helm"), _s3(), env.spec.airflow
    _bucket(s3, config.bucket_of(options.remote_logging.base), versioned=False)
    _bucket(s3, config.bucket_of(options.storage.base), versioned=True)
    git(cloned.parent, "init", "--quiet", "--bare", str(dags_remote(cloned)))
    head = git(cloned, "rev-parse", "HEAD").strip()
    install(helm, "airflow", "airflow")
    install(helm, "airflow-platform", "airflow")
    git(cloned, "push", "--quiet", str(dags_remote(cloned)),
        f"{head}:refs/heads/{git_bundle.deploy_ref('integration')}")
    for store in (options.remote_logging, options.storage):
        _writes(s3, store.base)
    for branch in BRANCHES:
        name = config.preview_name(branch)
        install(helm, name, name)
        install(helm, f"{name}-platform", name)
        preview_aws.create_pod_identity_association("airflow-integration", name, f"{name}-worker", "role", {})
        preview_db.ensure(preview_db.plan(url, name, FILE), url)
        git(cloned, "push", "--quiet", str(dags_remote(cloned)),
            f"{head}:refs/heads/{git_bundle.deploy_ref('integration', name)}")
        tgt = target.target(env.spec.helm, name)
        for store in (options.remote_logging, options.storage):
            _writes(s3, target.store_base(store.base, tgt))
    neighbour = f"{target.PREVIEW_PREFIX}/{config.preview_name(BRANCHES[0])}x/kept.log"
    s3.put_object(Bucket=config.bucket_of(options.storage.base), Key=neighbour, Body=b"not the preview's")
    return helm_standin


def left(root: Path, name: str, superuser: str, refs: bool = True) -> dict[str, object]:
    """What remains of preview (or environment namespace) ``name``: each part, empty where nothing is left."""
    import psycopg

    from airstack.deploy.replay import dags_remote

    env = config.load(root, "integration")
    state = Path(os.environ["HELM_STANDIN_STATE"]) / "releases" / "airflow-integration" / name
    refs = refs and git(root, "ls-remote", str(dags_remote(root)), f"refs/heads/airstack/dags/*{name}").split()[1::2]
    database, _ = preview_db.names(name)
    with psycopg.connect(superuser) as conn:
        db = conn.execute("SELECT datname FROM pg_database WHERE datname = %s UNION ALL "
                          "SELECT rolname FROM pg_roles WHERE rolname = %s", (database, database)).fetchall()
    prefix = "" if name == "airflow" else f"previews/{name}/"
    objects = [v for store in (env.spec.airflow.remote_logging, env.spec.airflow.storage)
               for v in _versions(_s3(), config.bucket_of(store.base), prefix)
               if name != "airflow" or not v.startswith("previews/")]
    return {k: v for k, v in {"namespace": state.is_dir() and sorted(p.name for p in state.iterdir()),
                              "database": db, "refs": refs, "objects": objects}.items() if v}


def uninstalled(calls) -> list[tuple[str, str]]:
    return [(c["argv"][1], c["argv"][c["argv"].index("--namespace") + 1]) for c in calls()
            if c["argv"][:1] == ["uninstall"]]


def test_destroy_merged_removes_the_previews_of_merged_and_gone_branches(
        cloned, deployed, preview_server, preview_aws, capsys):
    _, superuser = preview_server
    merged, gone, kept = (config.preview_name(b) for b in ("feature/merged", "feature/gone", "feature/open"))
    before = {name: left(cloned, name, superuser) for name in ("airflow", merged, gone, kept)}
    assert all(set(before[name]) == {"namespace", "database", "refs", "objects"} for name in (merged, gone, kept))
    assert run_main(main, ["destroy", "integration", "--merged", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{merged}: branch feature/merged is merged into main" in out and f"{gone}: no branch" in out
    assert f"{merged}: namespace {merged}: would remove" in out
    assert kept not in out and uninstalled(deployed) == []
    assert {name: left(cloned, name, superuser) for name in before} == before, "a dry run removes nothing"

    assert run_main(main, ["destroy", "integration", "--merged", "--yes"]) == 0
    out = capsys.readouterr().out
    assert sorted(uninstalled(deployed)) == sorted([(merged, merged), (f"{merged}-platform", merged),
                                                    (gone, gone), (f"{gone}-platform", gone)])
    env = config.load(cloned, "integration")
    logs, data = (config.bucket_of(s.base) for s in (env.spec.airflow.remote_logging, env.spec.airflow.storage))
    for name in (merged, gone):
        assert left(cloned, name, superuser) == {}, f"something of {name} is left"
        database, _ = preview_db.names(name)
        for part in (f"release {name}: removed", f"release {name}-platform: removed",
                     "pod identity: removed: 1 association(s)", f"database {database} and role {database}: removed",
                     f"namespace {name}: removed", f"deploy ref airstack/dags/previews/{name}: removed",
                     f"s3://{logs}/previews/{name}/: removed: 1 object version(s)",  # unversioned: the last write
                     f"s3://{data}/previews/{name}/: removed: 4 object version(s)"):  # 3 versions, 1 delete marker
            assert f"{name}: {part}\n" in out, part
    assert left(cloned, "airflow", superuser) == before["airflow"], "integration's own parts stay"
    assert left(cloned, kept, superuser) == before[kept], "the open branch's preview stays"
    neighbour = f"previews/{merged}x/kept.log"
    assert _versions(_s3(), data, neighbour), "a prefix that merely starts like the preview's is not its"
    assert {a["namespace"] for a in preview_aws.associations.values()} == {kept}, "their pod identities go too"

    capsys.readouterr()
    assert run_main(main, ["destroy", "integration", "--merged", "--yes"]) == 0
    assert "no preview to remove" in capsys.readouterr().out


def test_destroy_preview_leaves_nothing_of_it_and_reports_each_part(cloned, deployed, preview_server, capsys):
    _, superuser = preview_server
    name, others = config.preview_name("feature/open"), [config.preview_name(b) for b in BRANCHES[::2]]
    before = {n: left(cloned, n, superuser) for n in ("airflow", *others)}
    assert run_main(main, ["destroy", "integration", "--preview", "feature/open", "--yes"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{name}: ")]
    assert len(lines) == 8 and all(line.split(": ")[2] == "removed" for line in lines), lines
    assert left(cloned, name, superuser) == {}
    assert {n: left(cloned, n, superuser) for n in before} == before, "no other preview's parts, nor integration's"

    assert run_main(main, ["destroy", "integration", "--preview", "feature/open", "--yes"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{name}: ")]
    assert len(lines) == 8 and all(line.endswith("already absent") for line in lines), lines


def test_a_part_that_fails_stops_no_other_and_the_exit_code_says_so(cloned, deployed, preview_server, capsys):
    """The DAG bundle's remote is gone: the ref cannot be read, every other part is still removed."""
    from airstack.deploy.replay import dags_remote

    _, superuser = preview_server
    name = config.preview_name("feature/open")
    shutil.rmtree(dags_remote(cloned))
    dags_remote(cloned).write_text("not a repository\n")
    assert run_main(main, ["destroy", "integration", "--preview", "feature/open", "--yes"]) == 1
    out, err = capsys.readouterr()
    failed = [line for line in out.splitlines() if ": failed: " in line]
    assert len(failed) == 1 and failed[0].startswith(f"{name}: deploy ref airstack/dags/previews/{name}: failed"), out
    assert err.strip() == "error: 1 part(s) not removed (the lines above say why): run the destroy again"
    assert left(cloned, name, superuser, refs=False) == {}, "namespace, database and objects are gone all the same"


def test_destroy_merged_needs_the_base_branch(cloned, deployed, capsys):
    assert run_main(main, ["destroy", "integration", "--merged", "--base", "trunk", "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "origin/trunk does not exist" in err[0], err
    assert uninstalled(deployed) == []


def test_destroy_merged_refuses_production(scratch_repo, capsys):
    assert run_main(main, ["destroy", "production", "--merged", "--yes"]) == 1
    assert "production is protected" in capsys.readouterr().err


def test_a_prefix_is_deleted_in_batches_of_at_most_1000(aws_env):
    """1,002 object versions under a preview's prefix (moto S3): two DeleteObjects calls, none over 1000 keys;
    the objects beside the prefix stay."""
    from airstack.deploy import teardown
    from airstack.deploy.aws import client_factory

    s3 = client_factory("eu-west-1", aws_env)("s3")
    _bucket(s3, "airstack-batch-test", versioned=True)
    for i in range(501):
        for body in (b"v1", b"v2"):
            s3.put_object(Bucket="airstack-batch-test", Key=f"previews/airflow-many/logs/{i}.log", Body=body)
    s3.put_object(Bucket="airstack-batch-test", Key="previews/airflow-many-2/logs/0.log", Body=b"another preview's")

    class Counting:
        """The real client, with the size of each DeleteObjects call noted."""

        def __init__(self, client):
            self.client, self.batches = client, []

        def __getattr__(self, name):
            return getattr(self.client, name)

        def delete_objects(self, **kwargs):
            self.batches.append(len(kwargs["Delete"]["Objects"]))
            return self.client.delete_objects(**kwargs)

    counting = Counting(s3)
    assert teardown.delete_prefix(counting, "airstack-batch-test", "previews/airflow-many/") == 1002
    assert counting.batches == [1000, 2]
    assert _versions(s3, "airstack-batch-test", "previews/airflow-many/") == []
    assert len(_versions(s3, "airstack-batch-test", "previews/airflow-many-2/")) == 1


def test_destroy_merged_finds_a_preview_whose_releases_are_gone_by_its_deploy_ref(cloned, deployed, preview_server,
                                                                                  capsys):
    """A preview destroyed before destroy removed every part (releases only) is found by its deploy ref."""
    _, superuser = preview_server
    gone = config.preview_name("feature/gone")
    helm = shutil.which("helm")
    for name in (gone, f"{gone}-platform"):
        proc.run([helm, "uninstall", name, "--namespace", gone, "--kube-context", "airflow-integration"], timeout=60)
    assert set(left(cloned, gone, superuser)) == {"database", "refs", "objects"}  # the namespace folder is empty
    assert run_main(main, ["destroy", "integration", "--merged", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"{gone}: no branch on the remote names it" in out
    assert f"{gone}: release {gone}: already absent\n" in out and f"{gone}: namespace {gone}: removed\n" in out
    assert left(cloned, gone, superuser) == {}
