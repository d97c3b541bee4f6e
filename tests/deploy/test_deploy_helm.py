"""Helm deploys: argv and stdin payloads (pure), then the whole flow through a recording `helm` stand-in.

No Helm binary or cluster exists here (DESIGN.md): `airstack/standins/helm.py` plays `helm`,
rendering our platform chart with the real Helm 4 engine and keeping "installed" manifests.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

from airstack.cli import run_main
from airstack.airflow_env import SIMPLE_AUTH_MANAGER
from airstack.deploy import config
from airstack.settings import deploy_file
from airstack.deploy import auth_policy, chart_values, helm_binary, masking, target
from airstack.deploy.main import main
from airstack.settings.schema import parse_settings
from tests.helpers import leaves

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("charts/", "settings/")

ROOT = Path(__file__).resolve().parents[2]


def _helm_spec() -> deploy_file.Helm:
    return config.load(ROOT, "integration").spec.helm


def _settings(document: dict):
    return parse_settings(document, "settings/integration/secret.yaml")


def _secret_values(document: dict) -> list[str]:
    a = document["airflow"]
    values = [v for v in a["keys"].values() if isinstance(v, str)] + [a["metadata_connection"]]
    values += [c["password"] for c in a["connections"]] + [u["password"] for u in a["users"]]
    return values + [v for p in document["projects"].values() for v in p["secret"].values()]


def _stdin_values(document: dict) -> list[str]:
    """The whole values Helm must receive on stdin: keys, the metadata URL, connections as Airflow reads them,
    the project's secret."""
    from airstack.settings import render

    settings = _settings(document)
    values = list(render.keys_data(settings.airflow).values()) + [document["airflow"]["metadata_connection"]]
    values += [*render.env_data(settings.airflow).values(), render.users_data(settings.airflow)]
    return values + [v for p in document["projects"].values() for v in p["secret"].values()]


# ----------------------------------------------------------------------------- pure --
@pytest.mark.parametrize(("major", "flag", "absent"), [(3, "--atomic", "--rollback-on-failure"),
                                                       (4, "--rollback-on-failure", "--atomic")])
def test_upgrade_argv_rolls_back_waits_and_reads_values_from_stdin_last(major, flag, absent):
    spec = _helm_spec()
    argv = helm_binary.upgrade_argv("helm", major, spec.airflow, "airflow", "airflow", "ctx", "15m")
    assert argv[:5] == ["helm", "upgrade", "--install", "airflow", "airflow"]
    assert flag in argv and absent not in argv and "--wait" in argv
    assert argv[argv.index("--timeout") + 1] == "15m" and argv[argv.index("--kube-context") + 1] == "ctx"
    assert argv[argv.index("--version") + 1] == spec.airflow.version
    assert argv[argv.index("--repo") + 1] == "https://airflow.apache.org"
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--values"]
    assert files == [*spec.airflow.values, "-"], "values files in order, then stdin (which wins)"


# Strings that YAML 1.1 parsers (Helm's among them) read as something else unless quoted.
LOOKALIKES = ["1e3", "+1E3", "-2.5e-3", "0o17", "0x1F", "0777", "1_000", "y", "N", "yes", "Off", "~", "null", "",
              "2001-12-14", ".inf", ".NaN", "=", "<<", "- item", "key: value", "# hash", "é", "line\u2028sep", "tab\t",
              " lead", "trail ", "'q'", '"dq"', "{a: 1}", "[1]"]


def test_helm_reads_the_payload_as_we_meant_it():
    import helm_python

    values = {"settings": {"env": {f"AIRFLOW_VAR_V{i}": v for i, v in enumerate(LOOKALIKES)}},
              "projects": {"p": {"config": {v: v for v in LOOKALIKES if v}}}, "list": LOOKALIKES,
              "n": 3, "y": True, "ratio": 0.25, "none": None}
    assert helm_python.values_from_yaml(helm_binary.to_stdin(values)) == values  # Helm's own parser
    # What the deploy sent before (PyYAML): Helm reads some of these strings, and even keys, as other types.
    misread = helm_python.values_from_yaml(yaml.safe_dump(values, sort_keys=True))
    assert misread != values and misread["settings"]["env"]["AIRFLOW_VAR_V0"] == 1000


def test_the_standin_reads_values_as_helm_does(tmp_path, monkeypatch):
    monkeypatch.setenv("HELM_STANDIN_STATE", str(tmp_path))
    from airstack.standins import helm as helm_standin

    values_file = tmp_path / "values.yaml"
    values_file.write_text("threshold: 1e3\nflag: y\n")  # a values file written by hand, unquoted
    merged = helm_standin.values({"--values": [str(values_file), "-"]},
                                 helm_standin.helm_values(helm_binary.to_stdin({"label": "1e3"})))
    assert merged == {"threshold": 1000, "flag": True, "label": "1e3"}


def test_helm_major_reads_both_generations():
    assert helm_binary.helm_major("v3.17.2+gcc0bbbd") == 3 and helm_binary.helm_major("v4.0.0+g1") == 4
    with pytest.raises(ValueError):
        helm_binary.helm_major("helm says hi")


def test_payloads_carry_the_secrets_and_argv_none(scratch_repo):
    _, document = scratch_repo
    settings = _settings(document)
    tgt = target.target(_helm_spec())
    platform = chart_values.platform_values(settings, tgt, "reg/airflow:0123456789ab")
    stdin = helm_binary.to_stdin(platform)
    for secret in _secret_values(document):
        assert secret in stdin
    assert platform["settings"]["keys"]["fernet-key"] == document["airflow"]["keys"]["fernet_key"]
    assert platform["projects"]["example1"]["secret"] == document["projects"]["example1"]["secret"]
    assert "dagsSync" not in platform  # DAGs come from the DAG bundle, not from the runtime image
    spec = _helm_spec()
    argv = " ".join(helm_binary.upgrade_argv("helm", 4, spec.platform, tgt.platform_release, tgt.namespace, "c", "1m"))
    assert not any(secret in argv for secret in _secret_values(document))

    official = chart_values.airflow_values(tgt, "reg/airflow:0123456789ab", {"etl-basic": "reg/etl-basic:aa"},
                                           chart_values.settings_digest(platform))
    assert official["fernetKeySecretName"] == official["jwtSecretName"] == "airflow-settings-keys"
    assert official["images"]["airflow"]["tag"] == "0123456789ab"
    assert official["data"]["metadataSecretName"] == "airflow-metadata"
    assert {"name": "AIRSTACK_K8S_NAMESPACE", "value": "airflow"} in official["env"]
    assert not any(secret in helm_binary.to_stdin(official) for secret in _secret_values(document))


def test_settings_digest_changes_with_any_setting(scratch_repo):
    _, document = scratch_repo
    tgt = target.target(_helm_spec())
    before = chart_values.settings_digest(chart_values.platform_values(_settings(document), tgt, "r/a:t"))
    document["projects"]["example1"]["secret"]["API_TOKEN"] += "x"
    assert chart_values.settings_digest(chart_values.platform_values(_settings(document), tgt, "r/a:t")) != before


def test_preview_names_are_dns_labels_and_distinct():
    names = {config.preview_name(b) for b in ("feature/S3-logs", "feature/s3_logs", "Feature/S3-Logs")}
    assert len(names) == 3
    for name in names | {config.preview_name("x" * 200)}:
        assert len(name) <= 40 and re.match(deploy_file.DNS_LABEL, name), name
    assert len(config.preview_name("x" * 200)) == config.PREVIEW_NAME_MAX == 40
    # Cut names keep a hash of the whole branch: two long branches that share a prefix differ.
    long_a, long_b = "feature/remote-task-logs-on-s3", "feature/remote-task-logs-on-s3-and-gcs"
    assert config.preview_name(long_a) != config.preview_name(long_b)
    assert config.preview_name("short") == "airflow-short"  # a short, unaltered branch is kept as it is
    tgt = target.target(_helm_spec(), config.preview_name("feature/S3-logs"))
    assert tgt.namespace == tgt.airflow_release and tgt.platform_release.endswith("-platform")


def test_mask_secrets_hides_values_but_shows_a_change():
    manifest = yaml.safe_dump({"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "c2VjcmV0"}})
    masked = "\n".join(masking.mask_secrets(manifest))
    assert "c2VjcmV0" not in masked and "<sha256:" in masked
    other = "\n".join(masking.mask_secrets(manifest.replace("c2VjcmV0", "b3RoZXI=")))
    assert masked != other


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["helm"].pop("namespace"), "settings/integration/deploy.yaml: helm.namespace: Field required"),
    (lambda d: d["helm"]["airflow"].pop("version"),
     "deploy.yaml: helm: airflow.version: pin the official chart's version"),
    (lambda d: d["helm"]["platform"]["values"].append("charts/nope.yaml"),
     "helm.platform.values[2]: charts/nope.yaml does not exist"),
    (lambda d: d["cloudformation"].__setitem__("stacks", ["network", "Bad_Name"]),
     "cloudformation.stacks[1]: String should match pattern"),
    (lambda d: d.__setitem__("colour", "blue"), "colour: Extra inputs are not permitted"),
])
def test_bad_deploy_yaml_is_one_line_naming_file_and_field(scratch_repo, edit, message, capsys):
    root, _ = scratch_repo
    path = root / "settings" / "integration" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    assert run_main(main, ["plan", "integration"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


# ------------------------------------------------------------------------ full flow --
def _upgrades(calls):
    return [c for c in calls() if c["argv"][:1] == ["upgrade"]]


def test_deploy_passes_secrets_only_on_stdin_and_is_idempotent(deployable, helm_standin, capsys):
    root, document = deployable
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0, capsys.readouterr().err
    upgrades = _upgrades(helm_standin)
    assert [u["argv"][2] for u in upgrades] == ["airflow-platform", "airflow"], "platform first, then Airflow"
    for call in helm_standin():
        assert not any(s in " ".join(call["argv"]) for s in _secret_values(document)), "a secret in argv"
    stdin_digests = {v for u in upgrades for v in leaves(u["stdin"])}
    for value in _stdin_values(document):
        assert hashlib.sha256(value.encode()).hexdigest() in stdin_digests, "a secret did not come on stdin"
    platform_argv = upgrades[0]["argv"]
    assert "--rollback-on-failure" in platform_argv and "--wait" in platform_argv
    assert platform_argv[-2:] == ["--values", "-"]
    # The "installed" platform release holds the settings Secrets and the project's ConfigMap/Secret.
    installed = _installed(helm_standin, "airflow", "airflow-platform")
    assert {"airflow-settings-keys", "airflow-settings-env", "airflow-metadata", "airflow-users", "example1"} <= \
        {d["metadata"]["name"] for d in installed if d["kind"] == "Secret"}
    assert "example1" in {d["metadata"]["name"] for d in installed if d["kind"] == "ConfigMap"}

    capsys.readouterr()
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "airflow-platform: no changes" in out and "airflow: no changes" in out
    assert len(_upgrades(helm_standin)) == 2, "nothing changed: nothing upgraded"


def test_plan_changes_nothing_and_preview_gets_its_own_release(deployable, preview_server, helm_standin, preview_aws,
                                                               capsys):
    assert run_main(main, ["plan", "integration", "--only", "helm"]) == 0
    assert "not installed yet" in capsys.readouterr().out
    assert _upgrades(helm_standin) == []
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--preview", "--branch", "feature/S3-logs",
                           "--yes"]) == 0
    name = config.preview_name("feature/S3-logs")
    upgrades = _upgrades(helm_standin)
    assert [u["argv"][2] for u in upgrades] == [f"{name}-platform", name]
    assert all(u["argv"][u["argv"].index("--namespace") + 1] == name for u in upgrades)
    # Its pods reach S3 as the preview role (cluster.yaml: its own prefix only).
    assert {(a["namespace"], a["roleArn"].rsplit("/", 1)[-1]) for a in preview_aws.associations.values()} == {
        (name, "airflow-integration-preview")}
    assert len(preview_aws.associations) == 5
    assert run_main(main, ["destroy", "integration", "--preview", "feature/S3-logs", "--yes"]) == 0
    assert preview_aws.associations == {}
    uninstalled = [c["argv"][1] for c in helm_standin() if c["argv"][:1] == ["uninstall"]]
    assert uninstalled == [name, f"{name}-platform"]
    assert f"{name}: namespace {name}: removed" in capsys.readouterr().out


def test_plan_uses_the_helm_diff_plugin_where_installed(deployable, helm_standin, monkeypatch, capsys):
    """With the helm-diff plugin, the plan is `helm diff upgrade` (secrets suppressed, values on stdin)."""
    _, document = deployable
    monkeypatch.setenv("HELM_STANDIN_DIFF_PLUGIN", "1")
    assert run_main(main, ["deploy", "integration", "--only", "helm", "--yes"]) == 0
    diffs = [c["argv"] for c in helm_standin() if c["argv"][:2] == ["diff", "upgrade"]]
    assert [d[2] for d in diffs] == ["airflow-platform", "airflow"]
    assert not [c for c in helm_standin() if c["argv"][:1] == ["template"]], "no template fallback with the plugin"
    for argv in diffs:
        assert {"--suppress-secrets", "--allow-unreleased", "--detailed-exitcode"} <= set(argv)
        assert argv[-2:] == ["--values", "-"] and not any(s in " ".join(argv) for s in _secret_values(document))
    assert len(_upgrades(helm_standin)) == 2
    capsys.readouterr()
    assert run_main(main, ["plan", "integration", "--only", "helm"]) == 0
    out = capsys.readouterr().out
    assert "airflow-platform: no changes" in out and "airflow: no changes" in out


# ---------------------------------------------------------------------- auth manager --
SIMPLE = {"config": {"core": {"auth_manager": SIMPLE_AUTH_MANAGER}}}
FAB = {"config": {"core": {"auth_manager": auth_policy.FAB_AUTH_MANAGER}}}


@pytest.mark.parametrize(("files", "problem"), [
    ([("values.yaml", FAB), ("values-x.yaml", {})], None),
    ([("values.yaml", SIMPLE), ("values-x.yaml", FAB)], None),  # a later file wins, as with helm -f
    ([("values.yaml", FAB), ("values-x.yaml", SIMPLE)], "values-x.yaml: config.core.auth_manager: SimpleAuthManager"),
    ([("values.yaml", {}), ("values-x.yaml", {"config": {}})], "values-x.yaml: config.core.auth_manager: not set"),
])
def test_auth_problems_read_the_values_files_in_order(files, problem):
    problems = auth_policy.auth_problems(files)
    assert problems == [] if problem is None else (len(problems) == 1 and problems[0].startswith(problem)), problems


@pytest.mark.parametrize("env", ["integration", "production"])
def test_a_deploy_refuses_simple_auth_manager(scratch_repo, helm_standin, env, capsys):
    """SimpleAuthManager outside the local env: one line naming the file and the field, nothing run."""
    root, _ = scratch_repo
    path = root / "charts" / "airflow" / f"values-{env}.yaml"
    path.write_text(path.read_text() + yaml.safe_dump(SIMPLE))
    assert run_main(main, ["deploy", env, "--only", "helm", "--dry-run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: settings/{env}/deploy.yaml: helm.airflow.values: charts/airflow/values-{env}.yaml: "
                   f"config.core.auth_manager: SimpleAuthManager is for the local env only (passwords generated per "
                   f"api-server pod, no shared users): deploys use {auth_policy.FAB_AUTH_MANAGER}"]
    assert helm_standin() == [], "refused before Helm ran"


def test_the_official_payload_syncs_users_from_secrets_only(scratch_repo):
    _, document = scratch_repo
    script = (ROOT / chart_values.USERS_SCRIPT).read_text()
    values = chart_values.airflow_values(target.target(_helm_spec()), "reg/airflow:t", {}, "d", users_script=script)
    wait, container = values["apiServer"]["extraInitContainers"]  # sync-users after the schema's wait
    assert wait["name"] == "wait-for-migrations" and container["name"] == "sync-users"
    assert container["image"] == "reg/airflow:t" and container["args"] == [script]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["AIRSTACK_USERS"] == {"name": "airflow-users", "key": "users.json", "optional": True}
    assert refs["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == {"name": "airflow-metadata", "key": "connection"}
    assert not any(s in helm_binary.to_stdin(values) for s in _secret_values(document))
    assert "{{" not in script, "the chart renders init containers with tpl"


def test_missing_helm_is_one_clear_line(scratch_repo, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert run_main(main, ["destroy", "integration", "--preview", "x", "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`helm` was not found on PATH: install Helm" in err[0]


def _installed(calls, namespace, name):
    import os

    path = Path(os.environ["HELM_STANDIN_STATE"]) / "releases" / "airflow-integration" / namespace / f"{name}.yaml"
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_a_plan_whose_registry_does_not_answer_is_incomplete(scratch_repo, helm_standin, docker_or_skip, capsys):
    """The image digests could not be asked for: "could not run", not "not pushed yet", and the plan is incomplete
    (exit 1); before, the plan said nothing of it and exited 0."""
    root, _ = scratch_repo
    shutil.rmtree(root / "images" / "pandas-basic")  # conda channels are unreachable here
    path = root / "settings" / "integration" / "deploy.yaml"
    data = yaml.safe_load(path.read_text())
    data["images"]["registry"] = "127.0.0.1:9/airstack-nowhere"  # nothing listens on the discard port
    path.write_text(yaml.safe_dump(data))
    assert run_main(main, ["plan", "integration", "--only", "helm"]) == 1
    out, err = capsys.readouterr()
    assert "check image digests: could not run: asking the registry for 127.0.0.1:9/airstack-nowhere/airflow:" in out
    assert "plan: incomplete (0 passed, 1 could not run)" in out and "Traceback" not in out + err
    assert _upgrades(helm_standin) == []
