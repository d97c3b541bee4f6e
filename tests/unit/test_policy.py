import pytest

from airstack import paths
from airstack.dagtools.check.policy import load_policy, load_run_policy
from airstack.errors import ConfigError

HEAD = "[tool.airstack.dag-policy]\n"


def test_repo_policy_loads():
    policy = load_policy(paths.pyproject())
    assert policy.min_retries >= 1 and "example" in policy.allowed_tags
    assert "airflow.operators" in policy.deprecated_imports


def test_run_skips_have_reasons():
    for dag_id, reason in load_run_policy(paths.pyproject()).skip.items():
        assert len(reason) > 20, f"{dag_id}: a skip needs a real reason"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{HEAD}allowed-tags = []\n", "tool.airstack.dag-policy.allowed-tags: Tuple should have at least 1"),
        (f"{HEAD}allowed-tags = ['a']\nmin-retries = -1\n", "tool.airstack.dag-policy.min-retries:"),
        (f"{HEAD}allowed-tags = ['a']\nretries = 1\n", "tool.airstack.dag-policy.retries: Extra inputs"),
        ('[tool.other]\nx = 1\n', "[tool.airstack.dag-policy] is missing"),
        ('[tool.airstack.dag-policy\n', "not valid TOML"),
    ],
)
def test_bad_policy_names_file_and_field(tmp_path, body, message):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(body)
    with pytest.raises(ConfigError) as excinfo:
        load_policy(pyproject)
    assert str(excinfo.value).startswith(f"{pyproject}:") and message in str(excinfo.value)
