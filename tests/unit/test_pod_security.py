"""airstack/deploy/pod_security.py: every container the deploy adds gets the hardened context (pure)."""

from airstack.deploy import pod_security


def test_every_added_container_gets_the_context_and_the_input_is_kept():
    values = {"apiServer": {"extraInitContainers": [{"name": "wait"}, {"name": "sync-users"}]},
              "scheduler": {"extraContainers": [{"name": "side", "securityContext": {"runAsUser": 1000}}]},
              "executor": "KubernetesExecutor"}
    hardened = pod_security.harden(values)
    for container in hardened["apiServer"]["extraInitContainers"]:
        assert container["securityContext"] == pod_security.CONTAINER_CONTEXT
    side = hardened["scheduler"]["extraContainers"][0]["securityContext"]
    assert side == {**pod_security.CONTAINER_CONTEXT, "runAsUser": 1000}  # a container's own setting wins
    assert "securityContext" not in values["apiServer"]["extraInitContainers"][0]
    assert hardened["executor"] == "KubernetesExecutor"


def test_the_context_is_non_root_without_escalation_or_capabilities():
    context = pod_security.CONTAINER_CONTEXT
    assert (context["runAsNonRoot"], context["allowPrivilegeEscalation"]) == (True, False)
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
