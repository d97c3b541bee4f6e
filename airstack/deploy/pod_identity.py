"""EKS Pod Identity for preview environments: their service accounts get cluster.yaml's PreviewRole.

The main release's associations are CloudFormation resources (cluster.yaml); a preview's namespace
and release exist only once its branch is deployed, so the deploy associates them through the EKS
API and ``destroy`` removes them. PreviewRole lets a pod use only ``previews/<its namespace>/`` of
the logs and data buckets, which is where :func:`airstack.deploy.chart_values.airflow_values` points a
preview's task logs and storage. Clients come from :func:`airstack.deploy.aws.client_factory`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airstack.errors import AirstackError

# The official chart's service accounts whose pods reach S3 (as cluster.yaml associates them).
COMPONENTS = ("worker", "triggerer", "api-server", "scheduler", "dag-processor")
CLUSTER_STACK = "cluster"
OUTPUTS = ("ClusterName", "PreviewRoleArn")


class PodIdentityError(AirstackError):
    pass


@contextlib.contextmanager
def _aws_errors(namespace: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PodIdentityError(f"pod identity of preview {namespace}: {error.get('Code')}: "
                               f"{error.get('Message')}") from None
    except BotoCoreError as exc:
        raise PodIdentityError(f"pod identity of preview {namespace}: {exc}") from None


def service_accounts(release: str) -> list[str]:
    return [f"{release}-{component}" for component in COMPONENTS]


def target(cf, stack_prefix: str) -> tuple[str, str]:
    """(cluster name, PreviewRole ARN) from the cluster stack's outputs."""
    from airstack.deploy.cloudformation import ChangeSets

    stack = f"{stack_prefix}-{CLUSTER_STACK}"
    with _aws_errors(stack):
        outputs = ChangeSets(cf).outputs(stack)
    missing = [key for key in OUTPUTS if not outputs.get(key)]
    if missing:
        raise PodIdentityError(f"stack {stack} has no output {', '.join(missing)}: deploy integration's stacks "
                               "(nox -s deploy-integration) before a preview")
    return outputs["ClusterName"], outputs["PreviewRoleArn"]


def _associations(eks, cluster: str, namespace: str) -> list[dict]:
    found, token = [], None
    while True:
        page = eks.list_pod_identity_associations(clusterName=cluster, namespace=namespace,
                                                  **({"nextToken": token} if token else {}))
        found += page.get("associations", [])
        token = page.get("nextToken")
        if not token:
            return found


def ensure(eks, cluster: str, namespace: str, release: str, role_arn: str, dry_run: bool = False) -> list[str]:
    """Associate each of the release's service accounts with PreviewRole; returns those (to be) created."""
    with _aws_errors(namespace):
        existing = {a["serviceAccount"] for a in _associations(eks, cluster, namespace)}
        missing = [sa for sa in service_accounts(release) if sa not in existing]
        if not dry_run:
            for account in missing:
                eks.create_pod_identity_association(clusterName=cluster, namespace=namespace, serviceAccount=account,
                                                    roleArn=role_arn, tags={"airstack/preview": namespace})
    return missing


def remove(eks, cluster: str, namespace: str) -> int:
    """Delete every association of the preview's namespace; returns how many."""
    with _aws_errors(namespace):
        found = _associations(eks, cluster, namespace)
        for association in found:
            eks.delete_pod_identity_association(clusterName=cluster, associationId=association["associationId"])
    return len(found)
