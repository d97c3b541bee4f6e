"""The deploy replay of `nox -s ci` (and of the deploy-noop benchmark and tests): a deploy against local stand-ins.

- AWS and ``helm`` (with the cluster): :func:`airstack.standins.aws_and_helm`, a moto server on 127.0.0.1
  and the recording helm stand-in on PATH (it renders our chart with the real Helm 4 engine);
- the environment's keys: a scratch copy of the repository whose settings file is encrypted
  to a throwaway age key kept in the copy (the committed integration/production files are
  encrypted to keys nobody here holds), as a git checkout on ``main``;
- the DAG bundle's remote: a bare git repository beside the copy (:func:`dags_remote`).

``python -m airstack.deploy.replay ENV [DEPLOY ARGS...]`` runs ``deploy ENV --dry-run`` there
(``--dags``: after a real full deploy, which a DAG-only deploy adds to).
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from pathlib import Path

import yaml

from airstack import paths, proc
from airstack.airflow_env import configured
from airstack.standins import aws_and_helm

FOLDERS = ("settings", "charts", "infra", "images", "requirements", "dags", "plugins")


def _point_kms(sops_yaml: Path, env: str, kms_arn: str | None) -> None:
    """The env's rule encrypts to ``kms_arn`` (a key on the moto server) instead of the real KMS key, or to none."""
    from airstack.settings.sops_config import load, rule_for

    config = load(sops_yaml)
    rule = rule_for(config, env) or {}
    for group in rule.get("key_groups") or []:
        if "kms" in group:
            if kms_arn:
                group["kms"] = [{"arn": kms_arn}]
            else:
                del group["kms"]
    sops_yaml.write_text(yaml.safe_dump(config, sort_keys=False))


def scratch_environment(dest: Path, registry: str | None = None, env: str = "integration",
                        kms_arn: str | None = None) -> tuple[Path, dict]:
    """A copy of the repository whose ``env`` settings are encrypted to a throwaway key kept in the copy.

    The committed integration/production files are encrypted to keys nobody here holds (and
    production's also to a KMS key: ``kms_arn`` replaces it, e.g. a key on the moto server).
    The copy's file carries every kind of secret (keys, the metadata URL, a connection, a
    project's secret, a FAB user's password).
    """
    root = paths.scratch_copy(dest, FOLDERS, ("pyproject.toml", ".sops.yaml", ".gitignore"))
    return root, scratch_settings(root, env, registry, kms_arn)


def scratch_settings(root: Path, env: str, registry: str | None = None, kms_arn: str | None = None) -> dict:
    """Encrypt ``env``'s settings of the scratch copy ``root`` to a throwaway key kept there; returns the plaintext."""
    from airstack.settings import keys, store
    from airstack.settings.sops_config import add_recipient

    pair = keys.generate_age_key()
    (root / "settings" / env / keys.COMMITTED_KEY).write_text(pair.identity + "\n")
    add_recipient(root / ".sops.yaml", env, pair.recipient)
    _point_kms(root / ".sops.yaml", env, kms_arn)
    filled, _ = keys.fill_missing(keys.Keys())
    document = {
        "airflow": {"keys": filled.model_dump(exclude_none=True),
                    "metadata_connection": f"postgresql+psycopg2://airflow:{secrets.token_urlsafe(16)}@db:5432/airflow",
                    "connections": [{"id": "warehouse_db", "type": "postgres", "host": "wh.internal", "port": 5432,
                                     "login": "etl", "password": secrets.token_urlsafe(16), "schema": "warehouse"}],
                    "variables": {"etl_min_order_amount": "10"}, "pools": [],
                    "users": [{"username": "ada", "role": "Admin", "email": "ada@example.invalid",
                               "first_name": "Ada", "last_name": "Lovelace",
                               "password": secrets.token_urlsafe(18)}]},
        "projects": {"example1": {"config": {"REPORT_CURRENCY": "EUR"},
                                  "secret": {"API_TOKEN": secrets.token_urlsafe(24)}}},
    }
    secret_file = root / "settings" / env / "secret.yaml"
    secret_file.write_text("airflow: {}\n")  # sops cannot re-encrypt a file it cannot decrypt: start afresh
    store.save(root, env, document)
    path = root / "settings" / env / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    if registry:
        data["images"]["registry"] = registry
    bundle = (data.get("airflow") or {}).get("dag_bundle")
    if bundle and bundle.get("kind") == "git":  # the DAG bundle's remote: a bare repository beside the copy
        bundle["repository"] = str(dags_remote(root))
    path.write_text(yaml.safe_dump(data))
    return document


def dags_remote(root: Path) -> Path:
    """The stand-in for the repository a git DAG bundle clones (made bare by the first deploy that pushes)."""
    return root.parent / "dags-remote.git"


def records_bucket(root: Path, env: str, s3) -> None:
    """The bucket of ``env``'s release records (deploy.yaml ``release.records``), made on the stand-in S3."""
    from airstack.deploy import config, release

    spec = config.load(root, env).spec.release
    if spec is not None:
        bucket, _ = release.record_key(spec.records, env)
        if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


def git_checkout(root: Path) -> None:
    """Make ``root`` a git checkout of ``main`` with everything committed (production's guards want one)."""
    for argv in (["init", "--quiet", "--initial-branch=main"], ["add", "-A"],
                 ["commit", "--quiet", "--allow-empty", "-m", "ci"]):
        proc.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", *argv], cwd=root)


def database_standin(root: Path, env: str, factory) -> None:
    """A protected environment's metadata database on the stand-in AWS (an RDS instance of its database stack's
    name), which its deploys snapshot before they may migrate it (airstack/deploy/snapshot.py)."""
    from airstack.deploy import config
    from airstack.deploy.cloudformation import load_template
    from airstack.deploy.snapshot import database_resource
    from airstack.standins.aws import database_stack

    spec = config.load(root, env).spec
    if not spec.protected or spec.cloudformation is None:
        return
    templates = {n: load_template(root / "infra" / "cloudformation" / f"{n}.yaml") for n in spec.cloudformation.stacks}
    stack_name, logical_id = database_resource(templates, spec.cloudformation.stack_prefix, env)
    database_stack(factory("cloudformation"), factory("rds"), stack_name, logical_id, f"{env}-airflow")


def _first_deploys(env: str, source: str | None, dags: bool) -> list[str]:
    """What must have run, for real, before ``env``'s replay: what it promotes from (its record), and for a
    DAG-only deploy the environment's own full deploy too (a DAG-only deploy adds to a full one)."""
    return [*([source] if source else []), *([env] if dags else [])]


def main(argv: list[str]) -> int:
    """``deploy ENV --dry-run`` against the stand-ins (what `nox -s ci` runs for the deploy jobs)."""
    env, extra = argv[0], [a for a in argv[1:] if a not in ("--yes", "--dry-run")]
    with tempfile.TemporaryDirectory(prefix=f"airstack-ci-{env}-") as tmp, aws_and_helm(Path(tmp)) as standin_env, \
            configured({k: v for k, v in standin_env.items() if k.startswith("AWS_")}):  # sops' KMS calls too
        from airstack.deploy import config
        from airstack.deploy.aws import client_factory

        # The project's factory (a session of its own): boto3's default session may hold an environment
        # read before this one was set (another deploy in this process).
        kms = client_factory(standin_env["AWS_DEFAULT_REGION"], standin_env["AWS_ENDPOINT_URL"])("kms")
        kms_arn = kms.create_key(Description=f"sops {env} (stand-in)")["KeyMetadata"]["Arn"]
        root, _ = scratch_environment(Path(tmp) / "repo", registry=f"127.0.0.1:5000/airstack-ci-{env}", env=env,
                                      kms_arn=kms_arn)
        factory = client_factory(standin_env["AWS_DEFAULT_REGION"], standin_env["AWS_ENDPOINT_URL"])
        records_bucket(root, env, factory("s3"))
        run_env = {**standin_env, "AIRSTACK_ROOT": str(root)}
        source = config.load(root, env).spec.release
        source = source.promote_from if source else None
        if source:
            scratch_settings(root, source, registry=f"127.0.0.1:5000/airstack-ci-{source}")
        git_checkout(root)
        for name in {env, *_first_deploys(env, source, "--dags" in extra)}:
            database_standin(root, name, factory)
        for first in _first_deploys(env, source, "--dags" in extra):
            print(f"{env}: first {first}, deployed for real against the stand-ins (its release record)")
            code = proc.run_streaming([sys.executable, "-m", "airstack.deploy", "deploy", first, "--only", "helm",
                                       "--yes", "--skip-unavailable-base"], env=run_env, cwd=root)
            if code:
                return code
        print(f"{env}: deploy --dry-run against local stand-ins (moto server, helm stand-in, throwaway keys)")
        return proc.run_streaming([sys.executable, "-m", "airstack.deploy", "deploy", env, "--dry-run", *extra],
                                  env=run_env, cwd=root)


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
