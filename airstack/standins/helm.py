"""A recording stand-in for the ``helm`` binary (no Helm binary or cluster exists here).

:func:`install` puts it on PATH as ``helm`` (``python -m airstack.standins.helm``), with the
``kubectl`` stand-in of the same "cluster" (:mod:`airstack.standins.kubectl`: a namespace is a folder),
for the deploy tests, ``nox -s ci``'s deploy replay and the ``deploy-noop`` benchmark; it runs in the shared
environment (helm-python-sdk). It answers what a deploy asks of Helm:
``version``, ``plugin list`` (no diff plugin), ``template``, ``upgrade --install``,
``get manifest``, ``uninstall``, ``list --all-namespaces --output json``. Local charts are
rendered by the real Helm 4 engine (helm-python-sdk); a chart from a repository (the official
chart, unreachable here) is represented by one ConfigMap holding a digest of its merged values.

With ``HELM_STANDIN_UPGRADE_TIMEOUT=<release>``, ``upgrade`` of that release fails as Helm 4 does when its
``--wait`` runs past ``--timeout`` under ``--rollback-on-failure`` (pods not ready, e.g. waiting for a long
migration): exit 1 and Helm's message on stderr, the release kept as it was (rolled back) or, on a first
install, removed (uninstalled).

It records each call in ``$HELM_STANDIN_STATE/calls.jsonl``: argv as given, and stdin with
every leaf value replaced by its SHA-256, so tests can prove a secret came on stdin (and not
in argv) without any plaintext reaching the disk. Installed releases' manifests are kept in
the state folder per kube context (one cluster each) and namespace, as a cluster would keep
them, Secret values as the digests airstack's diff shows them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import yaml

STATE_ENV = "HELM_STANDIN_STATE"


def install(bin_dir: Path, state: Path, python: str = sys.executable) -> dict[str, str]:
    """Write ``bin_dir/helm`` (this module run by ``python``); the environment that puts it first on PATH and
    keeps its state (calls.jsonl, the releases of each kube context) in ``state``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "helm"
    script.write_text(f'#!/bin/sh\nexec "{python}" -m airstack.standins.helm "$@"\n')
    script.chmod(0o755)
    from airstack.standins import kubectl

    kubectl.install(bin_dir, python)  # the same "cluster": its namespaces are this stand-in's folders
    return {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", STATE_ENV: str(state)}


def calls(state: Path) -> list[dict]:
    """The calls recorded in ``state``: argv, and stdin with every leaf value replaced by its SHA-256."""
    log = state / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


def _state() -> Path:
    return Path(os.environ[STATE_ENV])


def digest(value) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def hashed(tree):
    if isinstance(tree, dict):
        return {k: hashed(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [hashed(v) for v in tree]
    return digest(tree)


def helm_values(text: str) -> dict:
    """Values text read by Helm's own parser (helm-python-sdk), which types `1e3` or `y` as Helm does."""
    import helm_python

    return helm_python.values_from_yaml(text) or {}


def parse(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    positional, options = [], {}
    flags = {"--install", "--create-namespace", "--atomic", "--rollback-on-failure", "--wait", "--short",
             "--ignore-not-found", "--allow-unreleased", "--suppress-secrets", "--detailed-exitcode",
             "--all-namespaces", "--all"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in flags:
            options.setdefault(arg, []).append("")
        elif arg.startswith("--"):
            options.setdefault(arg, []).append(argv[i + 1])
            i += 1
        else:
            positional.append(arg)
        i += 1
    return positional, options


def values(options: dict, stdin: dict) -> dict:
    from airstack.deploy.chart_values import merge_values

    merged: dict = {}
    for file in options.get("--values", []):
        merged = merge_values(merged, stdin if file == "-" else helm_values(Path(file).read_text()))
    return merged


def render(name: str, chart: str, namespace: str, merged: dict, options: dict) -> str:
    if options.get("--repo") or not Path(chart).is_dir():
        doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-standin", "namespace": namespace},
               "data": {"chart": chart, "version": (options.get("--version") or [""])[0],
                        "values-sha256": digest(json.dumps(merged, sort_keys=True))}}
        return yaml.safe_dump(doc, sort_keys=True)
    import helm_python

    with helm_python.Chart.load(chart) as loaded:
        rendered = loaded.render(values=merged, name=name, namespace=namespace, is_install=True)
    return "\n---\n".join(text for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt"))


def diff(name: str, chart: str, namespace: str, merged: dict, options: dict) -> int:
    """The helm-diff plugin's `diff upgrade --detailed-exitcode`: 2 with changes, 0 without."""
    import difflib

    path = release_file(name, namespace, options)
    before = path.read_text().splitlines() if path.is_file() else []
    after = installed(render(name, chart, namespace, merged, options)).splitlines()
    lines = list(difflib.unified_diff(before, after, lineterm=""))
    print("\n".join(lines))
    return 2 if lines else 0


def installed(manifest: str) -> str:
    """What the "cluster" keeps of a release: no hooks, Secret values as the digests airstack's diff shows."""
    from airstack.deploy.masking import installed_objects, mask_secret_values

    return yaml.safe_dump_all([mask_secret_values(d) for d in installed_objects(manifest)], sort_keys=True)


def release_file(name: str, namespace: str, options: dict) -> Path:
    """Where the "cluster" of the call's kube context keeps a release."""
    context = (options.get("--kube-context") or ["default"])[0]
    return _state() / "releases" / context / namespace / f"{name}.yaml"


TIMEOUT_ENV = "HELM_STANDIN_UPGRADE_TIMEOUT"


def timed_out(name: str, namespace: str, options: dict) -> int:
    """What Helm 4 prints when ``upgrade --install --rollback-on-failure --wait`` runs past ``--timeout`` (its
    pkg/action upgrade.go/install.go, the kstatus waiter's "not ready" line); the release as Helm leaves it."""
    flag = "rollback-on-failure" if "--rollback-on-failure" in options else "atomic"
    why = (f"resource Deployment/{namespace}/{name}-scheduler not ready. status: InProgress, message: "
           "Available: 0/1\ncontext deadline exceeded")
    if release_file(name, namespace, options).is_file():
        print(f'level=WARN msg="upgrade failed" name={name} error="{why}"', file=sys.stderr)
        print(f"Error: UPGRADE FAILED: release {name} failed, and has been rolled back due to {flag} being set: "
              f"{why}".replace("\\n", "\n"), file=sys.stderr)
    else:
        print(f'Release "{name}" does not exist. Installing it now.')
        print(f"Error: release {name} failed, and has been uninstalled due to {flag} being set: "
              f"{why}".replace("\\n", "\n"), file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    stdin = helm_values(sys.stdin.read()) if "-" in argv else None
    _state().mkdir(parents=True, exist_ok=True)
    with (_state() / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"argv": argv, "stdin": hashed(stdin) if stdin is not None else None}) + "\n")
    positional, options = parse(argv)
    namespace = (options.get("--namespace") or ["default"])[0]
    verb = positional[0] if positional else ""
    if verb == "version":
        print("v4.1.0+gstandin")
    elif verb == "plugin":
        print("NAME\tVERSION\tDESCRIPTION")
        if os.environ.get("HELM_STANDIN_DIFF_PLUGIN"):
            print("diff\t3.9.0\tPreview helm upgrade changes as a diff")
    elif verb == "diff" and os.environ.get("HELM_STANDIN_DIFF_PLUGIN"):
        return diff(positional[2], positional[3], namespace, values(options, stdin or {}), options)
    elif verb == "template":
        print(render(positional[1], positional[2], namespace, values(options, stdin or {}), options))
    elif verb == "upgrade" and os.environ.get(TIMEOUT_ENV) == positional[1]:
        return timed_out(positional[1], namespace, options)
    elif verb == "upgrade":
        name, chart = positional[1], positional[2]
        manifest = render(name, chart, namespace, values(options, stdin or {}), options)
        target = release_file(name, namespace, options)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(installed(manifest))
        print(f'Release "{name}" has been upgraded. Happy Helming!')
    elif verb == "get":
        target = release_file(positional[2], namespace, options)
        if not target.is_file():
            print("Error: release: not found", file=sys.stderr)
            return 1
        print(target.read_text())
    elif verb == "list":
        context = (options.get("--kube-context") or ["default"])[0]
        found = sorted(_state().glob(f"releases/{context}/*/*.yaml"))
        print(json.dumps([{"name": p.stem, "namespace": p.parent.name, "status": "deployed"} for p in found]))
    elif verb == "uninstall":
        release_file(positional[1], namespace, options).unlink(missing_ok=True)
        print(f'release "{positional[1]}" uninstalled')
    else:
        print(f"helm stand-in: unsupported command {argv}", file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
