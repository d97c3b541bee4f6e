"""The security context of every container the deploy adds to the official chart's pods.

The chart gives its own containers ``securityContexts.containers`` (charts/airflow/values.yaml); the init
containers the deploy adds (:mod:`airstack.deploy.schema_wait`'s wait-for-migrations, the api-server's
sync-users) are passed through as written, so :func:`harden` gives each the same: the runtime image's user
(non-root), no privilege escalation, every capability dropped, the runtime's seccomp profile. checkov checks
the rendered result (tests/deploy/charts/test_chart_security.py).
"""

from __future__ import annotations

import copy

RUNTIME_UID = 50000  # images/airflow/Dockerfile's USER
CONTAINER_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": RUNTIME_UID,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_LISTS = ("extraInitContainers", "extraContainers")


def harden(values: dict) -> dict:
    """``values`` (the official chart's) with the context on every container the deploy added (a copy)."""
    result = copy.deepcopy(values)
    for section in result.values():
        if not isinstance(section, dict):
            continue
        for key in CONTAINER_LISTS:
            for container in section.get(key) or []:
                container["securityContext"] = {**CONTAINER_CONTEXT, **(container.get("securityContext") or {})}
    return result
