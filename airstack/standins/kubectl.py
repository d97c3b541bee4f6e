"""A recording stand-in for the ``kubectl`` binary (no cluster exists here), on the helm stand-in's "cluster".

:func:`install` puts it on PATH as ``kubectl`` beside the helm stand-in (:func:`airstack.standins.helm.install`
calls it), sharing its state folder: a namespace is the folder ``releases/<kube context>/<namespace>/`` that
``helm upgrade --install --create-namespace`` makes and ``helm uninstall`` leaves, as a cluster keeps a
namespace after its releases are gone. It answers ``get namespace NAME`` and ``delete namespace NAME
[--ignore-not-found]`` (deleting the namespace deletes what it still holds, as Kubernetes does), and
records each call in ``calls.jsonl`` as the helm stand-in does (kubectl gets no stdin here).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def install(bin_dir: Path, python: str = sys.executable) -> None:
    """Write ``bin_dir/kubectl`` (this module run by ``python``); its state is the helm stand-in's."""
    script = bin_dir / "kubectl"
    script.write_text(f'#!/bin/sh\nexec "{python}" -m airstack.standins.kubectl "$@"\n')
    script.chmod(0o755)


def namespace_dir(state: Path, context: str, namespace: str) -> Path:
    return state / "releases" / context / namespace


def main(argv: list[str]) -> int:
    from airstack.standins.helm import _state, parse

    _state().mkdir(parents=True, exist_ok=True)
    with (_state() / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"program": "kubectl", "argv": argv, "stdin": None}) + "\n")
    positional, options = parse([a for a in argv if not a.startswith("--wait") and not a.startswith("--timeout")])
    context = (options.get("--context") or ["default"])[0]
    if positional[:2] not in (["get", "namespace"], ["delete", "namespace"]) or len(positional) != 3:
        print(f"kubectl stand-in: unsupported command {argv}", file=sys.stderr)
        return 64
    verb, name = positional[0], positional[2]
    folder = namespace_dir(_state(), context, name)
    if not folder.is_dir():
        if verb == "delete" and "--ignore-not-found" in options:
            return 0
        print(f'Error from server (NotFound): namespaces "{name}" not found', file=sys.stderr)
        return 1
    if verb == "get":
        print(f"NAME{' ' * max(1, len(name) - 1)}STATUS\n{name}   Active")
    else:
        shutil.rmtree(folder)
        print(f'namespace "{name}" deleted')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
