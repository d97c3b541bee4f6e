"""``.sops.yaml``: one creation rule per environment.

``encrypted_regex`` lists the keys whose values sops encrypts (their whole subtree):
connection fields that carry secrets, the ``keys`` block, ``variables``, the metadata DB's and
the Celery broker's URLs, and each project's ``secret``. Everything else (connection ids and
types, variable names, which are mapping keys, pool names and slots, projects' ``config``)
stays readable in git diffs; sops' MAC still covers the whole file. A change here applies when
a file is next encrypted: files encrypted before stay valid.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ENCRYPTED_REGEX = ("^(keys|variables|host|port|login|password|schema|extra|uri|secret|metadata_connection"
                   "|celery_broker_url|client_secret)$")


def path_regex(env: str) -> str:
    return rf"^settings/{env}/secret\.yaml$"


def load(path: Path) -> dict:
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def rule_for(config: dict, env: str) -> dict | None:
    for rule in config.get("creation_rules") or []:
        if rule.get("path_regex") == path_regex(env):
            return rule
    return None


def recipients(config: dict, env: str) -> dict[str, list[str]]:
    """``{"age": [...], "kms": [...]}`` for an environment's rule (empty lists when there is none)."""
    rule = rule_for(config, env) or {}
    found: dict[str, list[str]] = {"age": [], "kms": []}
    for group in rule.get("key_groups") or []:
        found["age"] += list(group.get("age") or [])
        found["kms"] += [k["arn"] for k in group.get("kms") or []]
    return found


def file_recipients(path: Path) -> dict[str, list[str]]:
    """The recipients an encrypted file was actually encrypted for (its sops metadata)."""
    metadata = (yaml.safe_load(path.read_text()) or {}).get("sops") or {}
    return {"age": [a["recipient"] for a in metadata.get("age") or []],
            "kms": [k["arn"] for k in metadata.get("kms") or []]}


def missing_recipients(config: dict, env: str, path: Path) -> list[str]:
    """Recipients .sops.yaml lists for ``env`` that the file is not encrypted for (``sops updatekeys`` adds them)."""
    wanted, actual = recipients(config, env), file_recipients(path)
    return [f"{kind} {r}" for kind in ("age", "kms") for r in wanted[kind] if r not in actual[kind]]


def add_recipient(path: Path, env: str, recipient: str, kms_arn: str | None = None) -> None:
    """Add an age recipient (and optionally a KMS key) to the environment's rule, creating it if needed."""
    config = load(path)
    rule = rule_for(config, env)
    if rule is None:
        rule = {"path_regex": path_regex(env), "encrypted_regex": ENCRYPTED_REGEX, "key_groups": [{"age": []}]}
        config.setdefault("creation_rules", []).append(rule)
    group = rule["key_groups"][0]
    if recipient not in group.setdefault("age", []):
        group["age"].append(recipient)
    if kms_arn and kms_arn not in [k["arn"] for k in group.get("kms", [])]:
        group.setdefault("kms", []).append({"arn": kms_arn})
    path.write_text("# sops creation rules, one per environment (see airstack/settings/sops_config.py).\n"
                    + yaml.safe_dump(config, sort_keys=False))
