"""Every connection, variable and image the DAGs use exists in every environment (plaintext ids only).

One test for all environments: a missing item is one failure, naming every environment that lacks it.
A DAG file that does not import is left out (its integrity test fails; the end of the run says so).
"""

from __future__ import annotations

import pytest

from airstack import paths
from airstack.settings import parity
from airstack.settings.store import environments
from tests.dags.conftest import dag_health

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("images/", "settings/")
AFFECTED_BY_DAGS = True  # and any affected DAG

ENVIRONMENTS = environments(paths.repo_root())


def test_there_are_environments():
    assert {"local", "integration", "production"} <= set(ENVIRONMENTS)


def test_every_environment_has_everything_the_dags_use():
    broken = dag_health().leave_out("settings parity (test_settings_parity.py)")
    problems = parity.problems(paths.repo_root(), paths.dags_folder(), ENVIRONMENTS, leave_out=broken)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_the_dags_use_settings_at_all():
    """Guards the scanner: the example DAGs do name a connection, a variable and an image."""
    kinds = {(u.kind, u.name) for u in parity.scan_dags(paths.dags_folder())}
    assert {("connection", "warehouse_db"), ("variable", "etl_min_order_amount"), ("image", "etl-basic")} <= kinds


# --- settings the deployed environments must share: airflow.auth.oidc (airstack/settings/env_parity.py) ---
# Scratch repositories whose secret.yaml files are encrypted by real sops for age keys thrown away at once:
# what is compared is what sops leaves readable, with no key of any environment here.
OIDC = {"provider": "sso", "client_id": "airflow", "client_secret": "a-client-secret-1234",
        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration", "default_role": "Viewer"}
WHY = "integration logs in with passwords only; no IdP client is registered for it"


def deploy_yaml(helm: bool, waivers: dict | None) -> dict:
    release = {"release": "airflow", "chart": "apache-airflow/airflow", "version": "1.19.0"}
    doc: dict = {"images": {"registry": "registry.example/airflow"}}
    if helm:
        doc["helm"] = {"kube_context": "ctx", "namespace": "airflow", "airflow": release,
                       "platform": {"release": "airflow-platform", "chart": "example/platform"}}
    if waivers is not None:
        doc["parity_waivers"] = waivers
    return doc


def scratch_repo(tmp_path, oidc: set[str], waivers: dict[str, dict] | None = None):
    """integration and production (deployed) and local (not), with ``airflow.auth.oidc`` in the ones named."""
    import yaml

    from airstack.settings import sops
    from airstack.settings.keys import generate_age_key, new_fernet_key, new_secret
    from airstack.settings.sops_config import add_recipient

    root = tmp_path / "repo"
    (root / "dags").mkdir(parents=True)
    waivers = waivers or {}
    for env in ("local", "integration", "production"):
        add_recipient(root / ".sops.yaml", env, generate_age_key().recipient)  # its identity is not kept
        (root / "settings" / env).mkdir(parents=True)
        (root / "settings" / env / "deploy.yaml").write_text(yaml.safe_dump(deploy_yaml(env != "local",
                                                                                        waivers.get(env))))
        airflow = {"keys": {"fernet_key": new_fernet_key(), "api_secret_key": new_secret(), "jwt_secret": new_secret()},
                   **({"auth": {"oidc": OIDC}} if env in oidc else {})}
        path = root / "settings" / env / "secret.yaml"
        sops.write_atomically(path, sops.encrypt({"airflow": airflow}, path, env=env, key_env={}, root=root))
        assert "a-client-secret" not in path.read_text()
    return root


def auth_problems(root) -> list[str]:
    return parity.problems(root, root / "dags", ["integration", "local", "production"])


def test_oidc_in_one_deployed_environment_is_one_finding_naming_both(tmp_path):
    root = scratch_repo(tmp_path, oidc={"production", "local"})
    (problem,) = auth_problems(root)
    assert problem.startswith("airflow.auth.oidc: in settings/production/secret.yaml but not in "
                              "settings/integration/secret.yaml: add it there (`nox -s settings-edit -- integration`)")
    assert "parity_waivers" in problem and "local" not in problem  # local is not deployed
    assert auth_problems(scratch_repo(tmp_path / "both", oidc={"integration", "production"})) == []
    assert auth_problems(scratch_repo(tmp_path / "neither", oidc=set())) == []


def test_settings_check_tells_the_finding_once_and_fails(tmp_path):
    import sys

    from airstack import proc

    root = scratch_repo(tmp_path, oidc={"integration"})
    result = proc.run([sys.executable, "-m", "airstack.settings", "check"], cwd=paths.repo_root(), check=False,
                      env={"AIRSTACK_ROOT": str(root), "AIRSTACK_DAGS_FOLDER": str(root / "dags")}, timeout=120)
    found = [line for line in result.stderr.splitlines() if "airflow.auth.oidc" in line]
    assert result.returncode == 1 and len(found) == 1, result.stderr
    assert found[0].startswith("parity: airflow.auth.oidc: in settings/integration/secret.yaml but not in "
                               "settings/production/secret.yaml")


@pytest.mark.parametrize("waiving", ["integration", "production"])
def test_an_environment_that_says_why_is_not_a_finding(tmp_path, waiving):
    root = scratch_repo(tmp_path, oidc={"production"}, waivers={waiving: {"airflow.auth.oidc": WHY}})
    assert auth_problems(root) == []


def test_a_waiver_with_nothing_to_waive_is_a_finding(tmp_path):
    root = scratch_repo(tmp_path, oidc={"integration", "production"},
                        waivers={"integration": {"airflow.auth.oidc": WHY}})
    assert auth_problems(root) == [
        "settings/integration/deploy.yaml: parity_waivers.airflow.auth.oidc: every deployed environment (integration, "
        "production) has it, so there is no difference to waive: remove the waiver"]


@pytest.mark.parametrize(("waivers", "field"), [
    ({"airflow.auth.ldap": WHY}, "parity_waivers.airflow.auth.ldap"),
    ({"airflow.auth.oidc": "  because  "}, "parity_waivers.airflow.auth.oidc"),
    (["airflow.auth.oidc"], "parity_waivers"),
])
def test_a_malformed_waiver_is_one_line_naming_file_and_field(tmp_path, waivers, field):
    from airstack.errors import ConfigError

    root = scratch_repo(tmp_path, oidc={"production"}, waivers={"integration": waivers})
    with pytest.raises(ConfigError) as exc:
        auth_problems(root)
    (line,) = str(exc.value).splitlines()
    assert line.startswith(f"settings/integration/deploy.yaml: {field}"), line
