from types import SimpleNamespace

import pytest

from airstack import paths
from airstack.dagtools.check import rules
from airstack.dagtools.check.policy import load_policy


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


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from airflow.models import DAG", "airflow.models.DAG"),
        ("from airflow.models import BaseOperator, Variable", "airflow.models.BaseOperator"),
        ("from airflow.models import Param", "airflow.models.Param"),
        ("import airflow.models.dag", "airflow.models.dag"),
        ("from airflow import models\nwith models.DAG('x'):\n    pass", "airflow.models.DAG"),
        ("import airflow\nairflow.models.Variable.get('x')", "airflow.models.Variable"),
        ("from airflow.models.xcom_arg import XComArg", "airflow.models.xcom_arg"),
        ("from airflow import Dataset", "airflow.Dataset"),
    ],
)
def test_names_reexported_by_a_package_are_deprecated_imports(policy, source, found):
    violations = rules.check_imports("f.py", source, policy)
    assert violations and all(v.rule == rules.DEPRECATED_IMPORT for v in violations)
    assert f"`{found}`" in violations[0].message


@pytest.mark.parametrize("source", [
    "from airflow import DAG",  # re-exported by Airflow 3.3 without a deprecation
    "from airflow.models.taskinstance import TaskInstance",
    "from airflow.timetables.base import Timetable",
    "from airflow import models\nmodels.DagRun",
    "import airflow.sdk\nairflow.sdk.DAG('x')",
])
def test_what_airflow_3_still_exports_is_not_deprecated(policy, source):
    assert rules.check_imports("f.py", source, policy) == []


DYNAMIC = [
    ("from datetime import datetime\nX = datetime.now()", "datetime.now()"),
    ("import datetime\nX = datetime.datetime.utcnow()", "datetime.datetime.utcnow()"),
    ("import datetime as dt\nX = dt.date.today()", "dt.date.today()"),
    ("from datetime import date\nclass C:\n    day = date.today()", "date.today()"),
    ("import pendulum\nX = pendulum.now('UTC')", "pendulum.now()"),
    ("import pendulum\nX = pendulum.today()", "pendulum.today()"),
    ("import time\nX = time.time()", "time.time()"),
    ("import random\nX = random.choice([1, 2])", "random.choice()"),
    ("from random import randint\nX = randint(1, 2)", "randint()"),
    ("import uuid\nX = str(uuid.uuid4())", "uuid.uuid4()"),
    ("from airflow.sdk import DAG\nimport pendulum\nwith DAG('d', start_date=pendulum.now()):\n    pass",
     "pendulum.now()"),
    ("from airflow.sdk import dag\nimport time\n@dag()\ndef d():\n    x = time.time()", "time.time()"),
    ("import time\ndef f(x=time.time()):\n    pass", "time.time()"),
    ("from airflow.sdk import task\nimport random\n@task(retries=random.randint(1, 3))\ndef t():\n    pass",
     "random.randint()"),
    ("import time\ndef factory():\n    return time.time()\nX = factory()", "time.time()"),
]


@pytest.mark.parametrize(("source", "call"), DYNAMIC)
def test_values_that_change_on_every_parse(source, call):
    (violation,) = rules.check_dynamic_values("dags/x.py", source)
    line = next(i for i, text in enumerate(source.splitlines(), 1) if call.split("(")[0] in text
                and "import" not in text)
    assert str(violation).startswith(f"dags/x.py: [parse-time-dynamic-value] line {line}: {call} changes on every "
                                     "parse")


@pytest.mark.parametrize("source", [
    "from airflow.sdk import task\nfrom datetime import datetime\n@task\ndef t():\n    return datetime.now()",
    "from airflow.sdk import task\nimport random\n@task.bash\ndef t():\n    return f'echo {random.random()}'",
    "from datetime import datetime\ndef callable_for_python_operator():\n    return datetime.now()",
    "from datetime import datetime\nf = lambda: datetime.now()",
    "import pendulum\nSTART = pendulum.datetime(2024, 1, 1, tz='UTC')",
    "import random\nrandom.seed(1)\nR = random.Random(4)",
    "from datetime import datetime\nif __name__ == '__main__':\n    print(datetime.now())",
    "from airflow.sdk import asset\nimport time\n@asset(schedule=None)\ndef a():\n    return time.time()",
    "now = 1\nX = now",
])
def test_values_computed_at_task_time_pass(source):
    assert rules.check_dynamic_values("x.py", source) == []


def test_asset_dags_get_advice_the_decorator_can_follow(policy):
    dag = _dag(tags=(), tasks=(("a", "airflow", 0),))
    found = {v.rule: v.message for v in rules.check_dag("f.py", dag, {"catchup"}, policy, rules.ASSET)}
    assert set(found) == {rules.TAGS, rules.OWNER, rules.RETRIES}
    assert "@asset(tags=[...])" in found[rules.TAGS]
    assert "@task(owner=...) under @asset" in found[rules.OWNER] and "default_args" not in found[rules.OWNER]
    assert "@task(retries=...) under @asset" in found[rules.RETRIES]
    assert rules.check_dag("f.py", _dag(), set(), policy, rules.ASSET) == []  # catchup is always False


def test_same_file_duplicates():
    (violation,) = rules.same_file_duplicates("f.py", ["a", "b", "a"])
    assert violation.rule == rules.DUPLICATE_DAG_ID and "'a' is defined 2 times in this file" in violation.message
    assert rules.duplicate_dag_ids({"f.py": ["a", "a"]}) == []


def test_trim_traceback_starts_at_the_dag_file():
    text = ('Traceback (most recent call last):\n  File "/venv/airflow/importer.py", line 238, in parse\n'
            '    loader.exec_module(new_module)\n  File "/dags/x.py", line 3, in <module>\n    import nope\n'
            "ModuleNotFoundError: No module named 'nope'\n")
    assert rules.trim_traceback(text, "/dags/x.py") == (
        'Traceback (most recent call last):\n  File "/dags/x.py", line 3, in <module>\n    import nope\n'
        "ModuleNotFoundError: No module named 'nope'")
    assert rules.trim_traceback("AirflowDagCycleException: x\n", "/dags/x.py") == "AirflowDagCycleException: x"
