"""DAG-only deploys (``deploy ENV --dags``) end to end on the local stand-ins.

Real parts: git (the DAG bundle's remote is a bare repository beside the scratch checkout, where
a deploy pushes the deploy ref), the DAG checks (``python -m airstack.dagtools.check`` in the Airflow
environment), S3 on the moto server (the release records), the Docker daemon and
docker-offline's registry (the full deploys before). Helm and the cluster are the recording
stand-in. No image is built and no stack is touched: the image and CloudFormation entry points
are replaced with functions that fail the test if they are called.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


from airstack import proc
from airstack.cli import run_main
from airstack import git_bundle
from airstack.deploy import release
from airstack.deploy.main import main
from airstack.deploy.replay import dags_remote
from tests.deploy.test_promotion import RECORDS, head, promotable  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def commit(root: Path, message: str) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    proc.run([*git, "add", "-A"], cwd=root)
    proc.run([*git, "commit", "-qm", message], cwd=root)
    return head(root)


def ref_on_remote(root: Path, env: str) -> str | None:
    return git_bundle.remote_version(root, dags_remote(root).as_uri(), git_bundle.deploy_ref(env))


def nothing_but_dags(monkeypatch) -> None:
    """Any image build or plan, and any stack change, fails the test."""
    from airstack.deploy import cloudformation
    from airstack.images import api as images_api

    def refuse(*_args, **_kwargs):
        raise AssertionError("a DAG-only deploy touched images or stacks")

    for module, name in ((images_api, "build"), (images_api, "plan"), (images_api, "promote"),
                         (cloudformation, "deploy")):
        monkeypatch.setattr(module, name, refuse)


def upgrades(helm_standin) -> int:
    return len([c for c in helm_standin() if c["argv"][:1] == ["upgrade"]])


def test_dags_ship_alone_and_production_promotes_exactly_that_version(promotable, helm_standin, capsys,  # noqa: F811
                                                                      monkeypatch):
    root, s3, _ = promotable
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    full = head(root)
    assert ref_on_remote(root, "integration") == ref_on_remote(root, "production") == full
    first = release.read(s3, RECORDS, "integration")
    assert first.dags == {"bundle": "dags", "kind": "git", "ref": "airstack/dags/integration", "version": full}

    dag = root / "dags" / "example_bash_operator.py"
    dag.write_text(dag.read_text() + "\n# a DAG-only change\n")
    changed = commit(root, "a DAG change")
    calls = upgrades(helm_standin)
    capsys.readouterr()
    with monkeypatch.context() as patched:
        nothing_but_dags(patched)
        code = run_main(main, ["deploy", "integration", "--dags", "--yes"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "DAG checks" in out and f"-> {changed[:12]}" in out
        assert upgrades(helm_standin) == calls, "a DAG-only deploy ran Helm"
        assert ref_on_remote(root, "integration") == changed
        assert ref_on_remote(root, "production") == full, "production moved before its promotion"
        record = release.read(s3, RECORDS, "integration")
        # Only the DAG version moved: the images, charts and settings are the full deploy's.
        assert record.dags["version"] == changed and record.commit == full
        kept = (first.images, first.charts, first.settings_digest)
        assert (record.images, record.charts, record.settings_digest) == kept

        # Production ships exactly integration's bundle version, again without images, stacks or Helm.
        assert run_main(main, ["plan", "production", "--dags"]) == 0
        assert f"{full[:12]} -> {changed[:12]}" in capsys.readouterr().out
        assert ref_on_remote(root, "production") == full, "a plan moved the ref"
        assert run_main(main, ["deploy", "production", "--dags", "--yes"]) == 0, capsys.readouterr().err
        assert ref_on_remote(root, "production") == changed
        production = release.read(s3, RECORDS, "production")
        assert production.dags["version"] == changed and production.promoted_from == "integration"
        assert production.dags["ref"] == "airstack/dags/production" and upgrades(helm_standin) == calls

    # A full promotion of this commit is allowed (integration runs it, as its DAG bundle), and the values
    # it gives Helm pin production's bundle to its deploy ref, which names that very commit.
    assert run_main(main, ["deploy", "production", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    (call,) = [c for c in helm_standin() if c["argv"][:3] == ["upgrade", "--install", "airflow"]][-1:]
    kwargs = call["stdin"]["dagProcessor"]["dagBundleConfigList"][0]["kwargs"]  # leaves recorded as digests
    assert kwargs["tracking_ref"] == sha256("airstack/dags/production")
    assert kwargs["repo_url"] == sha256(dags_remote(root).as_uri())
    assert ref_on_remote(root, "production") == changed == release.read(s3, RECORDS, "production").dags["version"]


def test_a_dag_deploy_refuses_what_is_not_dags_alone(promotable, helm_standin, capsys):  # noqa: F811
    root, s3, _ = promotable
    # Before any full deploy: nothing to add DAGs to.
    assert run_main(main, ["deploy", "integration", "--dags", "--yes"]) == 1
    assert "deploy integration in full first" in capsys.readouterr().err
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    full = head(root)

    # The checks read the working tree, the deploy ships HEAD: a tree that differs from HEAD is refused before
    # the checks (here HEAD breaks a DAG that only the uncommitted tree fixes: the checks would pass, HEAD ship).
    dag = root / "dags" / "example_bash_operator.py"
    good = dag.read_text()
    dag.write_text(good + "\nimport nowhere_to_be_found\n")
    broken = commit(root, "a broken DAG, fixed only in the working tree")
    dag.write_text(good)
    capsys.readouterr()
    assert run_main(main, ["deploy", "integration", "--dags", "--yes"]) == 1
    out, err = capsys.readouterr()
    assert (f"--dags checks the working tree and ships commit {broken[:12]}, and the tree has 1 uncommitted "
            "change(s) (dags/example_bash_operator.py): commit them") in err
    assert "DAG checks" not in out and ref_on_remote(root, "integration") == full
    proc.run(["git", "reset", "-q", "--hard", full], cwd=root)

    # A change outside dags/ needs a full deploy.
    (root / "charts" / "airflow" / "values-integration.yaml").write_text(
        (root / "charts" / "airflow" / "values-integration.yaml").read_text() + "# changed\n")
    commit(root, "a chart change")
    assert run_main(main, ["deploy", "integration", "--dags", "--yes"]) == 1
    assert "also changed charts/airflow/values-integration.yaml" in capsys.readouterr().err
    proc.run(["git", "reset", "-q", "--hard", full], cwd=root)

    # A DAG that fails the checks is never shipped.
    (root / "dags" / "broken.py").write_text("from airflow.sdk import DAG\nimport nowhere_to_be_found\n\n"
                                             "with DAG(dag_id='broken', schedule=None):\n    pass\n")
    commit(root, "a broken DAG")
    assert run_main(main, ["deploy", "integration", "--dags", "--yes"]) == 1
    assert "the DAG checks failed: nothing was deployed" in capsys.readouterr().err
    assert ref_on_remote(root, "integration") == full
    assert release.read(s3, RECORDS, "integration").dags["version"] == full

    # Production refuses a DAG-only promotion while it runs another full deploy than integration.
    assert run_main(main, ["deploy", "production", "--dags", "--yes"]) == 1
    assert "promote it in full first" in capsys.readouterr().err
    assert ref_on_remote(root, "production") is None


def test_a_preview_ships_its_dags_to_its_own_ref(promotable, capsys):  # noqa: F811
    """A preview keeps no release record: its DAGs go to airstack/dags/previews/<namespace> after the checks."""
    from airstack.deploy import config

    root, s3, _ = promotable
    argv = ["deploy", "integration", "--dags", "--preview", "--branch", "feature/x", "--yes",
            ]
    assert run_main(main, argv) == 0, capsys.readouterr().err
    ref = git_bundle.deploy_ref("integration", config.preview_name("feature/x"))
    assert git_bundle.remote_version(root, dags_remote(root).as_uri(), ref) == head(root)
    assert ref_on_remote(root, "integration") is None, "the preview moved integration's own ref"
    assert release.read(s3, RECORDS, "integration") is None
