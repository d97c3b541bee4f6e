"""Settings that must agree across the deployed environments, read without keys (what sops leaves readable).

A deployed environment is one whose deploy.yaml has a ``helm`` section (integration, production). A
section that one of them has and another lacks is a finding, told once with every environment on each
side: ``airflow.auth.oidc`` (FAB's OIDC login, :mod:`airstack.settings.oidc`), so that production is not the
first place a login flow runs. An environment that differs on purpose says why in its deploy.yaml:

::

    # settings/integration/deploy.yaml
    parity_waivers:
      airflow.auth.oidc: integration logs in with passwords only; no IdP client is registered for it

A waiving environment is left out of the comparison of that section. A waiver with nothing to
waive (every deployed environment agrees) is a finding too, so that none outlives its reason. A malformed
waiver (an unknown section, a reason shorter than a sentence) is one line naming deploy.yaml and the field,
from :func:`airstack.settings.deploy_file.load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator


# The sections compared, each as (its dotted name, its path in secret.yaml).
SECTIONS = {"airflow.auth.oidc": ("airflow", "auth", "oidc")}
Waivable = Literal[tuple(SECTIONS)]
REASON_MIN = 12


def _reason(text: str) -> str:
    if len(text.strip()) < REASON_MIN:
        raise ValueError(f"{text.strip()!r} is not a reason: say in a sentence why this environment differs")
    return text.strip()


Reason = Annotated[str, AfterValidator(_reason)]
Waivers = dict[Waivable, Reason]  # deploy.yaml's ``parity_waivers``


def has_section(secret: object, path: tuple[str, ...]) -> bool:
    """Whether secret.yaml, as stored (sops keeps key names readable), has a value at ``path``."""
    node = secret
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return False
        node = node[key]
    return True


def _read_secret(root: Path, env: str) -> object:
    from airstack.settings import store

    return store.stored(root, env)


def _names(envs: list[str]) -> str:
    return ", ".join(f"settings/{env}/secret.yaml" for env in envs)


def problems(root: Path, envs: list[str]) -> list[str]:
    """One line per section the deployed environments among ``envs`` disagree on (unwaived), and per waiver
    that waives nothing. Fewer than two deployed environments: nothing to compare."""
    from airstack.settings import deploy_file

    deployed = {}
    for env in envs:
        if deploy_file.deploy_file(root, env).is_file():
            spec = deploy_file.load(root, env).spec
            if spec.helm is not None:
                deployed[env] = (spec.parity_waivers, _read_secret(root, env))
    if len(deployed) < 2:
        return []
    out = []
    for name, path in SECTIONS.items():
        has = {env: has_section(secret, path) for env, (_, secret) in deployed.items()}
        waiving = sorted(env for env, (waivers, _) in deployed.items() if name in waivers)
        compared = [env for env in sorted(has) if env not in waiving]
        with_it, without = [e for e in compared if has[e]], [e for e in compared if not has[e]]
        if with_it and without:
            out.append(f"{name}: in {_names(with_it)} but not in {_names(without)}: add it there (`nox -s "
                       f"settings-edit -- {without[0]}`), or say why the environment differs in its deploy.yaml "
                       f"(parity_waivers: {{{name}: REASON}})")
        if len(set(has.values())) == 1:
            state = "has it" if next(iter(has.values())) else "lacks it"
            out += [f"settings/{env}/deploy.yaml: parity_waivers.{name}: every deployed environment ({', '.join(has)}) "
                    f"{state}, so there is no difference to waive: remove the waiver" for env in waiving]
    return out
