"""Fixtures of the deploy tests: the moto server, AWS credentials for it, Docker for the image step.

They need nothing from ``tests/conftest.py``: the gate's charts lane runs ``charts/``
with ``--confcutdir=tests/deploy``, which skips the Airflow test setup there (its Docker and
Postgres probes) and keeps the lane quick.
"""

from __future__ import annotations

import pytest

from airstack import paths


@pytest.fixture(scope="session")
def repo_root():
    return paths.repo_root()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real moto server (HTTP) on 127.0.0.1, one per test process; yields its URL.

    It stands in for AWS. Its quirks (DESIGN.md): ElastiCache and EKS resources are
    skipped silently, stacks have no outputs after ``execute_change_set``, there are no
    rollback states; each test names the quirk it relies on.
    """
    from airstack.standins.aws import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """Point boto3 at the moto server with throwaway credentials (moto accepts any)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return moto_endpoint


@pytest.fixture(scope="session")
def docker_or_skip():
    """The image step needs a Docker daemon (content tags hash the base image's id)."""
    from airstack.docker_client import docker_status

    ok, reason = docker_status()
    if not ok:
        pytest.skip(f"needs Docker: {reason}")
    from airstack.docker_client import connect
    from airstack.external_images import image

    if not connect().image_exists(image("python")):
        pytest.skip(f"the Python base image {image('python')} is not on this daemon: set AIRSTACK_PYTHON_IMAGE "
                    "(CI: local/python:3.11-bookworm from docker-offline)")


@pytest.fixture()
def scratch_repo(tmp_path, monkeypatch):
    """A copy of the repository whose integration settings are encrypted to a throwaway key kept in the copy,
    carrying every kind of secret (airstack.deploy.replay.scratch_environment). Yields (root, plaintext)."""
    from airstack.deploy.replay import git_checkout, scratch_environment

    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    root, document = scratch_environment(tmp_path / "repo")
    git_checkout(root)  # a deploy ships the checked-out commit's DAGs (its DAG bundle's ref)
    monkeypatch.setenv("AIRSTACK_ROOT", str(root))
    return root, document


@pytest.fixture()
def helm_standin(tmp_path, monkeypatch):
    """`helm` on PATH: airstack.standins.helm (records calls; renders local charts with the real engine)."""
    from airstack.standins import helm

    state = tmp_path / "helm-state"
    for name, value in helm.install(tmp_path / "bin", state).items():
        monkeypatch.setenv(name, value)
    return lambda: helm.calls(state)


REGISTRY = "127.0.0.1:5000"


@pytest.fixture()
def deployable(scratch_repo, docker_or_skip, aws_env, monkeypatch):
    """The scratch repo with images that build here (no conda), pushed to docker-offline's registry; the
    release records' bucket on the moto server."""
    import shutil
    import urllib.request

    import boto3
    import yaml

    from airstack.deploy.replay import records_bucket

    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3).close()
    except OSError as exc:
        pytest.skip(f"needs a registry at {REGISTRY} (CI: docker-offline start --registry): {exc}")
    root, document = scratch_repo
    shutil.rmtree(root / "images" / "pandas-basic")  # conda channels are unreachable here
    path = root / "settings" / "integration" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    data["images"]["registry"] = f"{REGISTRY}/airstack-deploy-test"
    path.write_text(yaml.safe_dump(data))
    records_bucket(root, "integration", boto3.client("s3", endpoint_url=aws_env, region_name="eu-west-1"))
    return root, document


class FakeEks:
    """EKS Pod Identity associations in memory: moto has no Pod Identity API (the calls' parameters are
    checked against botocore's model in tests/deploy/test_pod_identity.py)."""

    def __init__(self) -> None:
        self.associations: dict[str, dict] = {}

    def list_pod_identity_associations(self, clusterName, namespace, nextToken=None):
        return {"associations": [a for a in self.associations.values()
                                 if a["clusterName"] == clusterName and a["namespace"] == namespace]}

    def create_pod_identity_association(self, clusterName, namespace, serviceAccount, roleArn, tags):
        association_id = f"a-{len(self.associations) + 1}"
        self.associations[association_id] = {"associationId": association_id, "clusterName": clusterName,
                                             "namespace": namespace, "serviceAccount": serviceAccount,
                                             "roleArn": roleArn}

    def delete_pod_identity_association(self, clusterName, associationId):
        del self.associations[associationId]


CLUSTER_OUTPUTS_TEMPLATE = """
Resources:
  # moto needs a Name (AWS would generate one)
  Marker: {Type: AWS::SSM::Parameter, Properties: {Name: /airstack/cluster-stand-in, Type: String, Value: x}}
Outputs:
  ClusterName: {Value: airflow-integration}
  PreviewRoleArn: {Value: "arn:aws:iam::123456789012:role/airflow-integration-preview"}
"""


@pytest.fixture()
def preview_aws(aws_env, monkeypatch):
    """integration's cluster stack on the moto server (its two outputs: create_stack, since moto gives no
    outputs after a change set, and EKS resources are skipped), and a FakeEks for the Pod Identity calls."""
    import boto3

    from airstack.deploy import aws

    cf = boto3.client("cloudformation", endpoint_url=aws_env, region_name="eu-west-1")
    try:
        cf.create_stack(StackName="airflow-integration-cluster", TemplateBody=CLUSTER_OUTPUTS_TEMPLATE)
    except cf.exceptions.AlreadyExistsException:
        pass  # the moto server lives for the whole test session
    eks = FakeEks()
    real = aws.client_factory

    def factory(region, endpoint_url=None):
        clients = real(region, endpoint_url)
        return lambda service: eks if service == "eks" else clients(service)

    monkeypatch.setattr(aws, "client_factory", factory)
    return eks


def production_database(endpoint: str) -> str:
    """production's database stack on the moto server as the snapshot step finds it (airstack/deploy/snapshot.py):
    airflow-production-database's DBInstance, a real moto RDS instance; returns its id."""
    import boto3

    from airstack.standins.aws import database_stack

    cf = boto3.client("cloudformation", endpoint_url=endpoint, region_name="eu-west-1")
    rds = boto3.client("rds", endpoint_url=endpoint, region_name="eu-west-1")
    return database_stack(cf, rds, "airflow-production-database", "DBInstance", "production-airflow")


@pytest.fixture()
def preview_server(scratch_repo, postgres):
    """integration's ``metadata_connection`` on a real Postgres (the tests' ``postgres``): a role that is no
    superuser but has CREATEDB and CREATEROLE, as an RDS master user, and a database of its own, both with
    names of their own; the scratch settings re-encrypted with that URL (and committed). Yields
    (the URL, the superuser's libpq URL). Afterwards every preview database and role is dropped."""
    import secrets as tokens

    import psycopg
    from psycopg import sql

    from airstack.deploy.replay import git_checkout
    from airstack.postgres.sql import libpq_url, with_database
    from airstack.settings import store

    root, document = scratch_repo
    superuser = libpq_url(with_database(postgres.dsn, "postgres"))
    suffix = tokens.token_hex(4)
    admin, database, password = f"integ_owner_{suffix}", f"integ_meta_{suffix}", tokens.token_urlsafe(18)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
            sql.Identifier(admin), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(admin)))
    parts = postgres.dsn.split("@", 1)[1].split("/", 1)[0]  # host:port
    url = f"postgresql+psycopg2://{admin}:{password}@{parts}/{database}"
    document["airflow"]["metadata_connection"] = url
    store.save(root, "integration", document)
    git_checkout(root)  # a commit of the new settings file on the checkout's main
    yield url, superuser
    with psycopg.connect(superuser, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'preview\\_%%' "
                                    "OR datname = %s", (database,)).fetchall():
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        for (name,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'preview\\_%%' "
                                    "OR rolname = %s", (admin,)).fetchall():
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def helm_only_with_made_up_images(root, monkeypatch) -> None:
    """Ready `deploy integration --only helm` in the scratch copy ``root``: no release records (its
    deploy.yaml's ``release`` section dropped) and made-up image references with digests (none is pushed)."""
    import yaml

    from airstack.deploy import deployer

    path = root / "settings" / "integration" / "deploy.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(path.read_text()).items() if k != "release"}))
    refs = {"airflow": "127.0.0.1:5000/t/airflow:0123456789ab", "etl-basic": "127.0.0.1:5000/t/etl-basic:ab"}
    digests = dict.fromkeys(refs, "sha256:" + "0" * 64)
    monkeypatch.setattr(deployer, "images", lambda *a: deployer.Images("127.0.0.1:5000/t", refs, [], digests))
