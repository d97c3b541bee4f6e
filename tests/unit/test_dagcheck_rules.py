from types import SimpleNamespace

import pytest

from airstack import paths
from airstack.dagcheck import rules
from airstack.dagcheck.policy import load_policy


@pytest.fixture(scope="module")
def policy():
    return load_policy(paths.pyproject())


def _dag(tags=("example",), tasks=(("t1", "team", 1),)):
    return SimpleNamespace(dag_id="d", tags=set(tags),
                           tasks=[SimpleNamespace(task_id=i, owner=o, retries=r) for i, o, r in tasks])


def test_clean_dag_passes(policy):
    assert rules.check_dag("f.py", _dag(), {"catchup", "tags"}, policy) == []


@pytest.mark.parametrize(
    ("dag", "explicit", "rule", "text"),
    [
        (_dag(tags=()), {"catchup"}, rules.TAGS, "has no tags"),
        (_dag(tags=("example", "zzz")), {"catchup"}, rules.TAGS, "not in the allowed list: zzz"),
        (_dag(tasks=(("a", "airflow", 1), ("b", "team", 1))), {"catchup"}, rules.OWNER, "without an owner"),
        (_dag(tasks=(("a", "team", 0),)), {"catchup"}, rules.RETRIES, "retries < 1: a"),
        (_dag(), {"tags"}, rules.CATCHUP, "catchup= explicitly"),
    ],
)
def test_violations(policy, dag, explicit, rule, text):
    (violation,) = rules.check_dag("dags/f.py", dag, explicit, policy)
    assert violation.rule == rule and text in violation.message
    assert str(violation).startswith(f"dags/f.py: [{rule}]")


def test_unknown_explicit_kwargs_skip_catchup_rule(policy):
    assert rules.check_dag("f.py", _dag(), None, policy) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from airflow.operators.bash import BashOperator", "airflow.operators.bash"),
        ("import airflow.contrib.hooks", "airflow.contrib.hooks"),
        ("from airflow import operators", "airflow.operators"),
        ("from airflow.models.dag import DAG", "airflow.models.dag"),
        ("from airflow.utils.dates import days_ago", "airflow.utils.dates"),
    ],
)
def test_deprecated_imports(policy, source, found):
    (violation,) = rules.check_imports("f.py", source, policy)
    assert violation.rule == rules.DEPRECATED_IMPORT and f"`{found}`" in violation.message


@pytest.mark.parametrize("source", [
    "from airflow.sdk import DAG, task",
    "from airflow.providers.standard.operators.bash import BashOperator",
    "from airflow.models.dagrun import DagRun",  # not the deprecated airflow.models.dag
    "from . import helpers",
    "def broken(:",
])
def test_current_imports_pass(policy, source):
    assert rules.check_imports("f.py", source, policy) == []


@pytest.mark.parametrize(("message", "rule"), [
    ("AirflowDagCycleException: Cycle detected in Dag: x", rules.CYCLE),
    ('  File "x.py", line 2\nSyntaxError: invalid syntax', rules.SYNTAX_ERROR),
    ("ModuleNotFoundError: No module named 'pandas'", rules.IMPORT_ERROR),
])
def test_classify_import_error(message, rule):
    assert rules.classify_import_error(message) == rule


def test_duplicate_dag_ids():
    found = rules.duplicate_dag_ids({"a.py": ["x", "y"], "b.py": ["x"], "c.py": ["z"]})
    assert sorted((v.file, v.rule) for v in found) == [
        ("a.py", rules.DUPLICATE_DAG_ID), ("b.py", rules.DUPLICATE_DAG_ID)]
    assert "also defined in b.py" in next(v for v in found if v.file == "a.py").message
