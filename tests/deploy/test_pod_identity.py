"""Preview environments' EKS Pod Identity (airstack.deploy.pod_identity) and S3 prefix.

moto has no EKS Pod Identity API, so the EKS calls are checked with botocore's Stubber (which
validates every request against the service's model); the cluster stack's outputs come from the
moto server.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from airstack.deploy import chart_values, target
from airstack.deploy import pod_identity
from airstack.settings.deploy_file import AirflowOptions

CLUSTER, ROLE, NS = "airflow-integration", "arn:aws:iam::123456789012:role/preview", "airflow-feature-x"


def stubbed_eks():
    eks = boto3.client("eks", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return eks, Stubber(eks)


def test_ensure_associates_the_missing_service_accounts_with_the_preview_role():
    eks, stub = stubbed_eks()
    stub.add_response("list_pod_identity_associations",
                      {"associations": [{"clusterName": CLUSTER, "namespace": NS, "serviceAccount": f"{NS}-worker",
                                         "associationId": "a-1"}]},
                      {"clusterName": CLUSTER, "namespace": NS})
    for account in pod_identity.service_accounts(NS)[1:]:
        stub.add_response("create_pod_identity_association", {},
                          {"clusterName": CLUSTER, "namespace": NS, "serviceAccount": account, "roleArn": ROLE,
                           "tags": {"airstack/preview": NS}})
    with stub:
        created = pod_identity.ensure(eks, CLUSTER, NS, NS, ROLE)
    stub.assert_no_pending_responses()
    assert created == [f"{NS}-{c}" for c in ("triggerer", "api-server", "scheduler", "dag-processor")]


def test_remove_deletes_every_association_of_the_namespace_across_pages():
    eks, stub = stubbed_eks()
    page = {"clusterName": CLUSTER, "namespace": NS}
    stub.add_response("list_pod_identity_associations",
                      {"associations": [{**page, "associationId": "a-1"}], "nextToken": "t"}, page)
    stub.add_response("list_pod_identity_associations", {"associations": [{**page, "associationId": "a-2"}]},
                      {**page, "nextToken": "t"})
    for association in ("a-1", "a-2"):
        stub.add_response("delete_pod_identity_association", {}, {"clusterName": CLUSTER,
                                                                  "associationId": association})
    with stub:
        assert pod_identity.remove(eks, CLUSTER, NS) == 2
    stub.assert_no_pending_responses()


def test_an_eks_error_is_one_line():
    eks, stub = stubbed_eks()
    stub.add_client_error("list_pod_identity_associations", "ResourceNotFoundException", "No cluster found")
    with stub, pytest.raises(pod_identity.PodIdentityError, match=f"^pod identity of preview {NS}: "
                                                                  "ResourceNotFoundException: No cluster found$"):
        pod_identity.ensure(eks, CLUSTER, NS, NS, ROLE)


def test_the_cluster_stack_names_the_cluster_and_the_preview_role(preview_aws, aws_env):
    cf = boto3.client("cloudformation", endpoint_url=aws_env, region_name="eu-west-1")
    assert pod_identity.target(cf, "airflow-integration") == (
        "airflow-integration", "arn:aws:iam::123456789012:role/airflow-integration-preview")
    with pytest.raises(pod_identity.PodIdentityError, match="stack airflow-production-cluster has no output "
                                                            "ClusterName, PreviewRoleArn"):
        pod_identity.target(cf, "airflow-production")


def test_a_preview_keeps_to_its_own_prefix_of_the_buckets():
    """What PreviewRole allows (cluster.yaml: previews/<namespace>/*) is where a preview's pods write."""
    options = AirflowOptions(remote_logging={"base": "s3://logs-b/logs"}, storage={"base": "s3://data-b"})
    preview = target.Target(NS, f"{NS}-platform", NS, preview=True)
    values = chart_values.airflow_values(preview, "r/a:t", {}, "d", options)
    assert values["config"]["logging"]["remote_base_log_folder"] == f"s3://logs-b/previews/{NS}/logs"
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["AIRSTACK_STORAGE_BASE"] == f"s3://data-b/previews/{NS}"
    main = chart_values.airflow_values(target.Target("airflow", "airflow-platform", "airflow"), "r/a:t", {}, "d",
                                       options)
    assert main["config"]["logging"]["remote_base_log_folder"] == "s3://logs-b/logs"
