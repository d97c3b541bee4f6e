"""The ``kubectl`` binary, through :mod:`airstack.proc`: what a deploy asks of the cluster beyond Helm.

Helm makes a preview's namespace (``--create-namespace``) and ``helm uninstall`` leaves it; ``destroy``
deletes it with kubectl (:func:`delete_namespace_argv`). Nothing secret goes to kubectl.
"""

from __future__ import annotations

from airstack import proc
from airstack.deploy.helm_binary import HELM_ENV
from airstack.errors import AirstackError, CommandFailedError

HINT = "install kubectl (https://kubernetes.io/docs/tasks/tools/), configured for the environment's kube context"


class KubectlError(AirstackError):
    pass


def delete_namespace_argv(kubectl: str, namespace: str, kube_context: str, timeout: str) -> list[str]:
    """Delete a namespace and wait until it is gone (absent: no error, no output)."""
    return [kubectl, "delete", "namespace", namespace, "--context", kube_context, "--ignore-not-found",
            "--wait=true", f"--timeout={timeout}"]


class KubectlBinary:
    def __init__(self, timeout_seconds: float = 1800) -> None:
        self.kubectl = proc.which("kubectl", HINT)
        self.timeout = timeout_seconds

    def delete_namespace(self, namespace: str, kube_context: str, timeout: str) -> bool:
        """True: deleted; False: there was no such namespace (``--ignore-not-found`` prints nothing then)."""
        argv = delete_namespace_argv(self.kubectl, namespace, kube_context, timeout)
        try:
            out = proc.run(argv, check=True, timeout=self.timeout, inherit=HELM_ENV, what="kubectl delete")
        except CommandFailedError as exc:
            raise KubectlError(str(exc)) from None
        return bool(out.stdout.strip())
