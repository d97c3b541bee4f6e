"""The ``helm`` binary, through :mod:`airstack.proc` (the only place a deploy runs Helm), and its argv.

Values that hold secrets go to Helm's stdin (``--values -``, :func:`to_stdin`); argv and logs never hold them:
the argv builders here take only names, paths and versions.
"""

from __future__ import annotations

import difflib
import functools
import json
import re

import yaml

from airstack import proc
from airstack.deploy import masking
from airstack.errors import AirstackError, CommandFailedError
from airstack.settings.deploy_file import Release_

HINT = ("install Helm 3.8+ or 4 (https://helm.sh/docs/intro/install/); deploys call it as users do. "
        "Without it, `--only cloudformation` still works")


# What helm needs from the environment (cluster credentials, proxies, its own settings); settings
# keys that this process holds (AIRFLOW__*, SOPS_AGE_KEY) stay here.
HELM_ENV = ("KUBECONFIG", "HELM_*", "XDG_*", "AWS_*", "GOOGLE_*", "CLOUDSDK_*", "AZURE_*", "SSL_CERT_*",
            "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def process_timeout(helm_timeout: str, margin: float = 300) -> float:
    """Seconds a helm process may run for deploy.yaml's ``helm.timeout`` (``1h30m``, ``15m``, ``900s``): twice it (an
    upgrade that runs out waits as long again for its rollback: Helm's rollback takes the upgrade's timeout) and a
    margin, so that the process is never killed while Helm still works (a release left pending-upgrade)."""
    units = {"h": 3600, "m": 60, "s": 1}
    seconds = sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", helm_timeout))
    return 2 * seconds + margin


def helm_major(version_output: str) -> int:
    """3 or 4 from ``helm version --short`` (``v3.17.2+g...``)."""
    match = re.search(r"v(\d+)\.", version_output)
    if not match:
        raise ValueError(f"cannot read a Helm version from {version_output.strip()!r}")
    return int(match.group(1))


def _chart_args(release: Release_) -> list[str]:
    args = [release.chart]
    if release.repository:
        args += ["--repo", release.repository]
    if release.version:
        args += ["--version", release.version]
    return args


def upgrade_argv(helm: str, major: int, release: Release_, name: str, namespace: str, kube_context: str,
                 timeout: str) -> list[str]:
    """``helm upgrade --install`` that rolls back on failure and waits; values files, then stdin."""
    rollback = "--rollback-on-failure" if major >= 4 else "--atomic"  # Helm 4 renamed --atomic
    argv = [helm, "upgrade", "--install", name, *_chart_args(release), "--namespace", namespace,
            "--create-namespace", "--kube-context", kube_context, rollback, "--wait", "--timeout", timeout]
    for file in release.values:
        argv += ["--values", file]
    return [*argv, "--values", "-"]


def template_argv(helm: str, release: Release_, name: str, namespace: str, kube_context: str) -> list[str]:
    """``helm template`` of what ``upgrade_argv`` would install (the plan without the diff plugin)."""
    argv = [helm, "template", name, *_chart_args(release), "--namespace", namespace, "--kube-context", kube_context]
    for file in release.values:
        argv += ["--values", file]
    return [*argv, "--values", "-"]


def diff_argv(helm: str, release: Release_, name: str, namespace: str, kube_context: str) -> list[str]:
    """``helm diff upgrade`` (the helm-diff plugin), secrets suppressed in its output."""
    argv = [helm, "diff", "upgrade", name, *_chart_args(release), "--namespace", namespace,
            "--kube-context", kube_context, "--allow-unreleased", "--suppress-secrets", "--detailed-exitcode"]
    for file in release.values:
        argv += ["--values", file]
    return [*argv, "--values", "-"]


def uninstall_argv(helm: str, name: str, namespace: str, kube_context: str, timeout: str) -> list[str]:
    return [helm, "uninstall", name, "--namespace", namespace, "--kube-context", kube_context, "--wait",
            "--timeout", timeout, "--ignore-not-found"]


def list_argv(helm: str, kube_context: str) -> list[str]:
    """Every release of every namespace in any state (a failed or stuck preview too), as JSON: ``destroy
    --merged`` finds the previews there. ``--max`` well above any number of previews (Helm's default is 256)."""
    return [helm, "list", "--all-namespaces", "--all", "--kube-context", kube_context, "--output", "json",
            "--max", "10000"]


def get_manifest_argv(helm: str, name: str, namespace: str, kube_context: str) -> list[str]:
    return [helm, "get", "manifest", name, "--namespace", namespace, "--kube-context", kube_context]


def to_stdin(values: dict) -> str:
    """The values for ``--values -`` as JSON, which Helm's YAML parser reads with the same types.

    Every string is quoted, so text such as ``1e3``, ``0o17``, ``y``, ``N`` or ``+1E3`` stays text
    (PyYAML leaves those unquoted, and Helm reads them as numbers or booleans); non-ASCII is
    escaped, so that no character Helm's YAML 1.1 parser counts as a line break (U+2028) is folded.
    """
    return json.dumps(values, sort_keys=True, ensure_ascii=True, indent=1)


class HelmError(AirstackError):
    """A helm command failed: ``argv`` (no secret: values go on stdin) and its whole ``stderr``."""

    def __init__(self, message: str, stderr: str = "", argv: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.stderr, self.argv = stderr, argv


class HelmBinary:
    """``helm`` as a deploy runs it: each method builds its own argv (above) from names, and gives values on stdin."""

    def __init__(self, timeout_seconds: float = 1800) -> None:
        self.helm = proc.which("helm", HINT)
        self.timeout = timeout_seconds
        self.major = helm_major(self._run([self.helm, "version", "--short"]).stdout)

    def _run(self, argv: list[str], stdin: str | None = None, check: bool = True):
        try:
            return proc.run(argv, input=stdin, check=check, timeout=self.timeout, inherit=HELM_ENV,
                            what=f"helm {argv[1]}")
        except CommandFailedError as exc:
            raise HelmError(str(exc), exc.stderr, tuple(argv)) from None

    @functools.cached_property
    def has_diff_plugin(self) -> bool:
        """Asked once per deploy (each release's plan needs the answer)."""
        out = self._run([self.helm, "plugin", "list"], check=False)
        return out.returncode == 0 and any(line.split()[:1] == ["diff"] for line in out.stdout.splitlines()[1:])

    def upgrade(self, release: Release_, name: str, namespace: str, kube_context: str, timeout: str,
                values: dict) -> str:
        """``helm upgrade --install`` of ``release`` as ``name`` (:func:`upgrade_argv`), ``values`` on stdin."""
        argv = upgrade_argv(self.helm, self.major, release, name, namespace, kube_context, timeout)
        return self._run(argv, stdin=to_stdin(values)).stdout

    def uninstall(self, name: str, namespace: str, kube_context: str, timeout: str) -> str:
        """``helm uninstall`` (:func:`uninstall_argv`): waits, and an absent release is no error."""
        return self._run(uninstall_argv(self.helm, name, namespace, kube_context, timeout)).stdout

    def releases(self, kube_context: str) -> list[tuple[str, str]]:
        """(name, namespace) of every release the context's cluster holds."""
        out = self._run(list_argv(self.helm, kube_context)).stdout
        try:
            return [(r["name"], r["namespace"]) for r in json.loads(out or "[]")]
        except (ValueError, KeyError, TypeError):
            raise HelmError(f"helm list gave no JSON list of releases: {out.strip()[:200]!r}") from None

    def diff(self, release: Release_, name: str, namespace: str, context: str, values: dict) -> tuple[bool, str]:
        """(changed, text): the helm-diff plugin where installed, else ``helm template`` against the release."""
        if self.has_diff_plugin:
            out = self._run(diff_argv(self.helm, release, name, namespace, context), to_stdin(values), check=False)
            if out.returncode not in (0, 2):
                raise HelmError(f"helm diff failed: {(out.stderr.strip().splitlines() or [''])[-1]}")
            return out.returncode == 2, out.stdout
        rendered = self._run(template_argv(self.helm, release, name, namespace, context), to_stdin(values)).stdout
        deployed = self._run(get_manifest_argv(self.helm, name, namespace, context), check=False)
        before = masking.mask_secrets(deployed.stdout) if deployed.returncode == 0 else []
        after = masking.mask_secrets(_without_hooks(rendered))
        lines = list(difflib.unified_diff(before, after, f"{name} (deployed)", f"{name} (this commit)", lineterm=""))
        header = "" if deployed.returncode == 0 else f"{name}: not installed yet\n"
        return bool(lines), header + "\n".join(lines)


def _without_hooks(manifest: str) -> str:
    """``helm get manifest`` lists no hooks; drop them from the rendering so the two compare."""
    return yaml.safe_dump_all(masking.installed_objects(manifest), sort_keys=True)
