"""What each environment deploys to the official chart, as data (pure): its values and its Airflow config.

The values are the environment's deploy.yaml ``helm.airflow.values`` files merged as Helm merges
``-f`` files, then what the deploy pipes on stdin (:func:`airstack.deploy.chart_values.airflow_values`,
with deploy.yaml's ``airflow`` options, the users' sync, the DAG bundle, and FAB's OIDC login when
settings have ``airflow.auth.oidc``; placeholder image and digest). Settings are read without keys: the
OIDC section's readable part, its client secret a placeholder. Its Airflow config is the values'
``config`` sections, ``executor`` as ``[core] executor``, the DAG bundle list, and the ``AIRFLOW__*``
entries of ``env``; the api-server adds its own ``env`` and ``webserver_config.py`` (:func:`api_server`).
The official chart's own defaults are not part of it (its templates are not kept here).
"""

from __future__ import annotations

import configparser
import io
import json
from pathlib import Path

import yaml

from airstack.config_files import load_model, read_yaml
from airstack.deploy.chart_values import merge_values
from airstack.errors import ConfigError
from airstack.settings.oidc import Oidc

PLACEHOLDER_IMAGE = "registry.invalid/airflow:upgrade-rehearsal"
# What a value from a Secret (never decrypted here) holds when Airflow starts with the configuration.
SECRET_PLACEHOLDER = "secret-not-read-by-the-rehearsal"


def helm_environments(root: Path) -> list[str]:
    """The environments whose deploy.yaml deploys the official chart."""
    found = []
    for path in sorted((root / "settings").glob("*/deploy.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict) and isinstance(data.get("helm"), dict) and data["helm"].get("airflow"):
            found.append(path.parent.name)
    return found


def _values_file(root: Path, rel: str) -> dict:
    data = read_yaml(root / rel, rel)
    if not isinstance(data, dict):
        raise ConfigError(f"{rel}: expected a mapping of chart values")
    return data


def readable_oidc(root: Path, env: str) -> Oidc | None:
    """Settings' ``airflow.auth.oidc`` as sops leaves it readable (no key needed), the client secret a placeholder."""
    from airstack.settings import store

    rel = f"settings/{env}/secret.yaml"
    secret = store.stored(root, env)
    section = ((secret.get("airflow") or {}).get("auth") or {}).get("oidc")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{rel}: airflow.auth.oidc: expected a mapping")
    return load_model(root / rel, Oidc, data={**section, "client_secret": SECRET_PLACEHOLDER}, shown=rel,
                      prefix="airflow.auth.oidc")


def chart_values(root: Path, env: str) -> dict:
    """The official chart's values for ``env``: its files, then the deploy's whole stdin payload."""
    from airstack import git_bundle
    from airstack.deploy import chart_values, config, target

    spec = config.load(root, env).spec
    files = [_values_file(root, rel) for rel in spec.helm.airflow.values]
    tgt, bundle = target.target(spec.helm), spec.airflow.dag_bundle
    listed = git_bundle.config_list(bundle, git_bundle.deploy_ref(env), bundle.repository) \
        if bundle.kind == "git" else None
    payload = chart_values.airflow_values(tgt, PLACEHOLDER_IMAGE, {}, "upgrade-rehearsal", spec.airflow,
                                          (root / chart_values.USERS_SCRIPT).read_text(), listed)
    payload = chart_values.with_oidc(payload, tgt.airflow_release, readable_oidc(root, env),
                                     (root / chart_values.OIDC_CONFIG).read_text())
    return merge_values({}, *files, chart_values.keeping_listed(payload, files))


def airflow_config(values: dict) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(airflow.cfg sections, ``AIRFLOW__*`` environment variables) that the chart values give Airflow."""
    sections = {s: {k: _text(v) for k, v in (opts or {}).items()} for s, opts in (values.get("config") or {}).items()}
    if values.get("executor"):
        sections.setdefault("core", {})["executor"] = str(values["executor"])
    listed = (values.get("dagProcessor") or {}).get("dagBundleConfigList")
    if listed:  # the chart writes it to airflow.cfg as JSON
        sections.setdefault("dag_processor", {})["dag_bundle_config_list"] = json.dumps(listed)
    env = {name: value for name, value in _env(values.get("env")).items() if name.startswith("AIRFLOW__")}
    return sections, env


def _env(items) -> dict[str, str]:
    """A container's ``env`` list as a mapping; a value from a Secret is a placeholder (nothing is decrypted)."""
    return {str(item["name"]): str(item["value"]) if "value" in item else SECRET_PLACEHOLDER
            for item in items or [] if isinstance(item, dict) and item.get("name")}


def api_server(values: dict) -> tuple[str | None, dict[str, str]]:
    """(its ``webserver_config.py``, the environment it adds): what the chart gives the api-server beyond the
    config every component reads (``apiServer.apiServerConfig`` and ``apiServer.env``: OIDC's among them)."""
    api = values.get("apiServer") or {}
    return api.get("apiServerConfig"), _env(api.get("env"))


def _text(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def cfg_text(sections: dict[str, dict[str, str]]) -> str:
    """An airflow.cfg holding ``sections`` (interpolation off: values are written as given)."""
    parser = configparser.RawConfigParser()
    for section, options in sorted(sections.items()):
        parser.add_section(section)
        for key, value in sorted(options.items()):
            parser.set(section, key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def lint_findings(stdout: str) -> list[str]:
    """The findings of ``airflow config lint`` (its ``  - ...`` lines after "Found issues")."""
    return [line.strip()[2:].strip() for line in stdout.splitlines() if line.startswith("  - ")]
