"""Promotion, not rebuild: production ships exactly what integration's release record names.

Real parts: the Docker daemon and docker-offline's registry on 127.0.0.1:5000 (integration's and
production's registries are two repositories there), S3 on the moto server (the release records),
git (the commit a record names). Helm and the cluster are the recording stand-in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import shutil
import urllib.error
import urllib.request

import boto3
import pytest

from airstack import proc
from airstack.cli import run_main
from airstack.deploy import release
from airstack.deploy.main import main
from airstack.deploy.replay import git_checkout, records_bucket, scratch_environment, scratch_settings
from tests.deploy.conftest import production_database

REGISTRY = "127.0.0.1:5000"
RECORDS = "s3://integration-airflow-data-111122223333-eu-west-1/releases"


def registry_digest(repository: str, tag: str) -> str:
    """The registry's own answer (Docker-Content-Digest), not the daemon's."""
    request = urllib.request.Request(f"http://{REGISTRY}/v2/{repository}/manifests/{tag}", method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Docker-Content-Digest"]


@pytest.fixture()
def promotable(tmp_path, docker_or_skip, aws_env, helm_standin, monkeypatch):
    """A scratch checkout on main with integration and production settings (throwaway keys), each with its
    own repository in docker-offline's registry, and the records bucket on the moto server."""
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3).close()
    except OSError as exc:
        pytest.skip(f"needs a registry at {REGISTRY} (CI: docker-offline start --registry): {exc}")
    for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY"):
        monkeypatch.delenv(name, raising=False)
    # Repositories of this run only: the registry outlives the session, and tmp_path's name repeats across sessions.
    run = f"{tmp_path.name[-8:].replace('_', '-').lower()}-{secrets.token_hex(3)}"
    root, _ = scratch_environment(tmp_path / "repo", registry=f"{REGISTRY}/promo-{run}-int", env="integration")
    scratch_settings(root, "production", registry=f"{REGISTRY}/promo-{run}-prod")
    shutil.rmtree(root / "images" / "pandas-basic")  # conda channels are unreachable here
    monkeypatch.setenv("AIRSTACK_ROOT", str(root))
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="eu-west-1")
    records_bucket(root, "integration", s3)
    bucket, _ = release.record_key(RECORDS, "integration")
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):  # the moto server outlives a test
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    production_database(aws_env)  # the deploy snapshots production's database before it may migrate it
    git_checkout(root)
    return root, s3, run


def head(root) -> str:
    return proc.run(["git", "rev-parse", "HEAD"], cwd=root).stdout.strip()


def test_production_ships_integrations_images_by_digest(promotable, helm_standin, aws_env, capsys):
    root, s3, run = promotable
    # Nothing to promote yet: refused before anything changes.
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 1
    assert "no release record of integration" in capsys.readouterr().err
    assert helm_standin() == []

    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    integration = release.read(s3, RECORDS, "integration")
    assert integration.commit == head(root) and integration.charts["airflow"] == "1.19.0"
    assert set(integration.images) == {"airflow", "etl-basic"}
    for name, image in integration.images.items():
        assert registry_digest(f"promo-{run}-int/{name}", image["tag"]) == image["digest"]

    capsys.readouterr()
    assert run_main(main, ["plan", "production", "--only", "helm"]) == 0
    shown = capsys.readouterr().out
    assert f"commit: - -> {integration.commit}" in shown
    assert f"image airflow: - -> {integration.images['airflow']['tag']}" in shown

    upgrades_before = len([c for c in helm_standin() if c["argv"][:1] == ["upgrade"]])
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    production = release.read(s3, RECORDS, "production")
    # Its first record: the schema may change, so production's database was snapshotted before Helm.
    assert production.db_snapshot.startswith("production-airflow-predeploy-")
    rds = boto3.client("rds", endpoint_url=aws_env, region_name="eu-west-1")
    (snap,) = rds.describe_db_snapshots(DBSnapshotIdentifier=production.db_snapshot)["DBSnapshots"]
    assert snap["Status"] == "available" and snap["DBInstanceIdentifier"] == "production-airflow"
    restore = "restore-db-instance-from-db-snapshot --region eu-west-1 --db-snapshot-identifier "
    restore += production.db_snapshot
    assert restore in capsys.readouterr().out
    assert production.schema == integration.schema and "apache-airflow-core" in production.schema
    assert production.promoted_from == "integration" and production.commit == integration.commit
    assert production.images == integration.images, "the same images, by digest"
    for name, image in integration.images.items():
        assert registry_digest(f"promo-{run}-prod/{name}", image["tag"]) == image["digest"], name
    upgrades = [c for c in helm_standin() if c["argv"][:1] == ["upgrade"]][upgrades_before:]
    assert [u["argv"][2] for u in upgrades] == ["airflow-platform", "airflow"]
    assert all("production" in u["argv"][u["argv"].index("--kube-context") + 1] for u in upgrades)
    # Helm was given integration's digests (the stand-in records stdin leaves as their SHA-256).
    images = upgrades[1]["stdin"]["images"]
    ran, tag = integration.images["airflow"]["digest"], integration.images["airflow"]["tag"]
    assert images["airflow"]["digest"] == sha256_hex(ran) and images["airflow"]["tag"] == sha256_hex(tag)
    assert images["pod_template"]["tag"] == sha256_hex(f"{tag}@{ran}")
    (env,) = [e for e in upgrades[1]["stdin"]["env"] if e["name"] == sha256_hex("AIRSTACK_IMAGES")]
    etl = integration.images["etl-basic"]
    worker = f"{REGISTRY}/promo-{run}-prod/etl-basic:{etl['tag']}@{etl['digest']}"
    assert env["value"] == sha256_hex(json.dumps({"etl-basic": worker}, sort_keys=True))

    capsys.readouterr()
    assert run_main(main, ["plan", "production", "--only", "helm"]) == 0
    out = capsys.readouterr().out
    assert "production already runs integration's release" in out
    assert "production: no schema change (apache-airflow " in out and "would snapshot" not in out


def test_production_refuses_a_commit_integration_has_not_run(promotable, helm_standin, capsys):
    root, s3, _ = promotable
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    ran = head(root)
    (root / "images" / "airflow" / "NOTE.txt").write_text("a change integration never ran\n")
    proc.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A"], cwd=root)
    proc.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "y"], cwd=root)
    capsys.readouterr()
    upgrades = len([c for c in helm_standin() if c["argv"][:1] == ["upgrade"]])
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 1
    err = capsys.readouterr().err
    assert f"integration runs commit {ran[:12]}, this is {head(root)[:12]}" in err
    assert "image airflow: this commit builds" in err  # its context changed: another content tag
    assert len([c for c in helm_standin() if c["argv"][:1] == ["upgrade"]]) == upgrades, "nothing deployed"
    assert release.read(s3, RECORDS, "production") is None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def registry_has(repository: str, tag: str) -> bool:
    try:
        registry_digest(repository, tag)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def test_a_retagged_image_in_productions_registry_is_refused_before_any_change(promotable, helm_standin, capsys):
    """Same tag, other bytes: production's registry has airflow:<tag>, but not the image integration ran. The copy
    would skip it (the tag exists); the deploy refuses before the copy, the DAG ref and Helm."""
    from airstack.docker_client import get_client
    from tests.deploy.test_dag_deploy import ref_on_remote

    root, s3, run = promotable
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    integration = release.read(s3, RECORDS, "integration")
    tag, ran = integration.images["airflow"]["tag"], integration.images["airflow"]["digest"]
    # Another image pushed under production's tag (docker-offline's Debian image: surely not the runtime image).
    client = get_client()
    client.api.tag("local/debian:bookworm", f"{REGISTRY}/promo-{run}-prod/airflow", tag)
    for line in client.api.push(f"{REGISTRY}/promo-{run}-prod/airflow", tag=tag, stream=True, decode=True):
        assert "error" not in line, line
    retagged = registry_digest(f"promo-{run}-prod/airflow", tag)
    assert retagged != ran
    calls = len(helm_standin())
    capsys.readouterr()

    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 1
    out, err = capsys.readouterr()
    (line,) = [x for x in err.splitlines() if x.strip()]
    assert f"image airflow: {REGISTRY}/promo-{run}-prod/airflow:{tag} is {retagged} in production's registry" in line
    assert f"but integration ran {ran}" in line and "delete that tag from production's registry" in line
    assert "Traceback" not in out + err
    assert len(helm_standin()) == calls, "Helm was called"
    assert release.read(s3, RECORDS, "production") is None
    assert not registry_has(f"promo-{run}-prod/etl-basic", integration.images["etl-basic"]["tag"]), "copied"
    assert registry_digest(f"promo-{run}-prod/airflow", tag) == retagged
    assert ref_on_remote(root, "production") is None, "the DAG ref moved"

    # An image to copy that integration's registry no longer has (its record names a digest the registry lacks):
    # refused before the copy too, rather than after the stacks.
    gone = "sha256:" + "0" * 64
    images = {**integration.images, "etl-basic": {**integration.images["etl-basic"], "digest": gone}}
    release.write(s3, RECORDS, dataclasses.replace(integration, images=images))
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 1
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 2 and lines[0].startswith("error: image airflow: ") and lines[1] == (
        f"error: image etl-basic: {REGISTRY}/promo-{run}-int/etl-basic@{gone} is not in integration's registry "
        "any more: nothing to copy; deploy integration again from this commit"), lines
    assert len(helm_standin()) == calls and release.read(s3, RECORDS, "production") is None


def test_a_record_that_cannot_be_read_is_could_not_run(promotable, helm_standin, capsys, monkeypatch):
    """The records' S3 does not answer: the plan says the check could not run (not passed, not failed) and ends
    incomplete; the deploy stops there with nothing changed."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert run_main(main, ["plan", "production", "--only", "helm"]) == 1
    out, err = capsys.readouterr()
    assert "check integration's release record ran this commit: could not run: s3://" in out, out
    assert "plan: incomplete (0 passed, 1 could not run)" in out and "Traceback" not in out + err
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "the check integration's release record ran this commit could not run" in err
    assert "nothing was changed" in err and "Traceback" not in err
    assert helm_standin() == []


def test_a_registry_that_cannot_be_asked_is_not_an_absent_image(docker_or_skip):
    """strict: only the registry's own "no such manifest" is absent; a registry nobody answers for raises."""
    from airstack.docker_client import connect
    from airstack.errors import DockerRefusedError

    docker = connect()
    assert docker.registry_digest(f"{REGISTRY}/airstack-nowhere/x:missing", strict=True) is None
    with pytest.raises(DockerRefusedError, match="127.0.0.1:9"):
        docker.registry_digest("127.0.0.1:9/x:y", strict=True)
    assert docker.registry_digest("127.0.0.1:9/x:y") is None  # the image table's "not pushed": unchanged


def test_a_record_is_json_with_every_field():
    record = release.Record("integration", "c" * 40, "r", {"airflow": {"tag": "t", "digest": "sha256:" + "0" * 64}},
                            {"airflow": "1.19.0", "platform": "0.1.0"}, "d")
    assert release.Record.from_json(record.to_json(), "x") == record
    assert json.loads(record.to_json())["images"]["airflow"]["digest"].startswith("sha256:")
    assert record.ref("airflow", "other/reg") == "other/reg/airflow@sha256:" + "0" * 64


def _record(commit: str = "a" * 40, tag: str = "t1", dags: str = "a" * 40) -> release.Record:
    return release.Record("integration", commit, "reg", {"airflow": {"tag": tag, "digest": "sha256:" + "1" * 64}},
                          {"airflow": "1.19.0"}, "d",
                          dags={"bundle": "dags", "kind": "git", "ref": "airstack/dags/integration", "version": dags}
                          if dags else {})


@pytest.mark.parametrize(("tags", "commit", "expected"), [
    ({"airflow": "t1"}, "a" * 40, []),
    ({"airflow": "t2"}, "a" * 40, ["image airflow: this commit builds t2, integration ran t1"]),
    ({"airflow": "t1", "etl-basic": "t9"}, "a" * 40, ["image etl-basic is not in integration's record"]),
    ({"airflow": "t1"}, "b" * 40, ["integration runs commit aaaaaaaaaaaa, this is bbbbbbbbbbbb"]),
])
def test_promotion_problems_name_what_integration_has_not_run(tags, commit, expected):
    problems = release.promotion_problems(_record(), "integration", commit, tags, "s3://b/k")
    assert len(problems) == len(expected) and all(p.startswith(e) for p, e in zip(problems, expected)), problems
    assert release.promotion_problems(None, "integration", commit, tags, "s3://b/k")[0].startswith(
        "no release record of integration at s3://b/k")


def test_a_commit_integration_runs_as_its_dag_bundle_may_be_promoted():
    """After a DAG-only deploy (which ships only commits that changed DAGs alone), integration runs the
    commit of its bundle: that commit may be promoted; one integration runs neither way may not."""
    dags_only = _record(commit="a" * 40, dags="c" * 40)
    assert release.promotion_problems(dags_only, "integration", "c" * 40, {"airflow": "t1"}, "s3://b/k") == []
    assert release.promotion_problems(dags_only, "integration", "d" * 40, {"airflow": "t1"}, "s3://b/k") == [
        "integration runs commit aaaaaaaaaaaa, this is dddddddddddd: ship only what integration has run (deploy "
        "integration from this commit first)"]
    no_dags = release.promotion_problems(_record(dags=""), "integration", "a" * 40, {"airflow": "t1"}, "s3://b/k")
    assert no_dags == ["integration's record names no DAG bundle version: deploy integration from this commit first"]


def test_differences_list_only_what_changes():
    assert release.differences(_record(), _record()) == []
    rows = release.differences(_record(tag="t0"), _record())
    assert rows == [("image airflow", "t0 (sha256:111111111111)", "t1 (sha256:111111111111)")]
    assert ("commit", "-", "a" * 40) in release.differences(None, _record())
    assert release.differences(_record(dags="b" * 40), _record()) == [("dags", "b" * 40, "a" * 40)]
