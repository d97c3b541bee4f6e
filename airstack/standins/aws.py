"""AWS stands in as a moto server on 127.0.0.1: :func:`moto_server` is the one place it is started.

Used by the tests (``tests/conftest.py``'s S3, ``tests/deploy``'s CloudFormation/ECR/S3/KMS), by
``nox -s ci``'s deploy replay and by the ``deploy-noop`` benchmark. Its quirks are listed in DESIGN.md:
ElastiCache and EKS resources are skipped, no outputs after ``execute_change_set``, no rollback states.
(``nox -s up -- --s3`` runs ``moto.server`` as a service of the local environment: see localenv.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

REGION = "eu-west-1"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server (HTTP, every service) on 127.0.0.1 and a free port; yields its URL, stops it after."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client_env(endpoint: str, region: str = REGION) -> dict[str, str]:
    """The environment that points boto3 (and sops' KMS calls) at ``endpoint`` with throwaway credentials."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "standin", "AWS_SECRET_ACCESS_KEY": "standin",
            "AWS_DEFAULT_REGION": region}


# The metadata database, as a stack of one resource: infra/cloudformation/database.yaml's other resources need the
# network stack's outputs, and the deploy's snapshot step (airstack/deploy/snapshot.py) needs only the instance.
DATABASE_TEMPLATE = """
Resources:
  {logical_id}:
    Type: AWS::RDS::DBInstance
    Properties:
      DBInstanceIdentifier: {instance}
      Engine: postgres
      EngineVersion: "16"
      DBInstanceClass: db.t4g.micro
      AllocatedStorage: "20"
      MasterUsername: airflow_admin
      MasterUserPassword: stand-in-not-a-secret
"""


def database_stack(cloudformation, rds, stack_name: str, logical_id: str, instance: str) -> str:
    """Stack ``stack_name`` with its RDS instance ``instance`` on the moto server (made again where its instance was
    removed: a server may outlive a test); returns the instance's id."""
    from botocore.exceptions import ClientError

    try:
        cloudformation.describe_stacks(StackName=stack_name)
        if instance in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}:
            return instance
        cloudformation.delete_stack(StackName=stack_name)
    except ClientError:
        pass
    cloudformation.create_stack(StackName=stack_name,
                                TemplateBody=DATABASE_TEMPLATE.format(logical_id=logical_id, instance=instance))
    return instance
