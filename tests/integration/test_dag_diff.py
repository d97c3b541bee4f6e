"""`python -m airstack.dagtools.diff` end to end: a scratch clone of dags/, a branch that changes them, real Airflow.

main holds the repository's DAGs; branch `feature` changes a schedule, catchup, an owner, a
task's retries and another's image, renames a task, adds one (with a variable in a template,
a pool and a queue), moves an edge, removes a DAG and adds one; the working tree adds a DAG
file that does not import and one that reads a variable at parse time. The report is compared in full.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from airstack import paths, proc
from airstack.dagtools import diff

GIT = ("git", "-c", "user.name=dag-diff test", "-c", "user.email=dag-diff@example.invalid",
       "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main")
BASH = "airflow.providers.standard.operators.bash.BashOperator"
EMPTY = "airflow.providers.standard.operators.empty.EmptyOperator"

NEW_DAG = '''"""A DAG the branch adds."""
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="new_dag", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         default_args={"owner": "analytics", "retries": 2}):
    EmptyOperator(task_id="only")
'''
BROKEN = 'from airflow.sdk import DAG\n\nraise RuntimeError("half-written")\n'
LOOKUP = 'from airflow.sdk import DAG, Variable\n\nTHRESHOLD = Variable.get("threshold")\n'
LOOKUP_ERROR = ("airstack.dagtools.check.parse.ParseTimeAccessError: [parse-time-variable] line 3: "
                "Variable.get('threshold') at parse time; read it inside a task (templates or context)")


def git(root: Path, *args: str) -> str:
    return proc.run([*GIT, *args], cwd=root, what="git").stdout.strip()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}: the scratch change needs updating"
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("dag-diff-repo")
    shutil.copytree(paths.repo_root() / "dags", root / "dags",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "images.json"))
    git(root, "init", "--quiet")
    git(root, "add", "dags")
    git(root, "commit", "--quiet", "-m", "DAGs as on main")
    base = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "--quiet", "-b", "feature")
    dags = root / "dags"
    bash = dags / "example_bash_operator.py"
    edit(bash, 'schedule="0 0 * * *"', 'schedule="0 6 * * *"')
    edit(bash, "catchup=False", "catchup=True")
    edit(bash, 'task_id="also_run_this"', 'task_id="also_run"')
    edit(bash, "    run_this >> run_this_last\n",
         '    notify = BashOperator(task_id="notify", bash_command="echo {{ var.value.notify_channel }}",\n'
         '                          pool="notifications", queue="alerts")\n'
         "    run_this >> notify\n")
    k8s = dags / "k8s_project_example.py"
    edit(k8s, 'task_id="extract_orders",', 'task_id="extract_orders",\n        retries=3,')
    edit(k8s, 'image="etl-basic",\n        script="transform.py"',
         'image="pandas-basic",\n        script="transform.py"')
    edit(dags / "etl_postgres.py", "default_args=DEFAULT_ARGS,", 'default_args={**DEFAULT_ARGS, "owner": "analytics"},')
    (dags / "papermill_example.py").unlink()
    (dags / "new_dag.py").write_text(NEW_DAG)
    git(root, "add", "-A", "dags")
    git(root, "commit", "--quiet", "-m", "the change under review")
    (dags / "broken.py").write_text(BROKEN)  # uncommitted: the working tree is what is compared
    (dags / "lookup.py").write_text(LOOKUP)  # a variable read at parse time fails the file, as in the gate
    return root, base


def dag_diff(root: Path, *args: str, check: bool = True) -> proc.Result:
    env = {"AIRSTACK_ROOT": str(root), "AIRSTACK_DAGS_FOLDER": "", "PYTHONDONTWRITEBYTECODE": "1"}
    return proc.run([sys.executable, "-m", diff.__name__, *args], cwd=root, check=check, timeout=600,
                    env=env, what="dag-diff")


def test_json_reports_every_change_exactly(scratch):
    root, base = scratch
    report = json.loads(dag_diff(root, "--json").stdout)
    assert report["base"] == {"label": f"merge base with main ({base[:10]})", "commit": base}
    assert report["dags_added"] == [{
        "dag_id": "new_dag", "file": "dags/new_dag.py", "schedule": "None", "catchup": False,
        "owners": ["analytics"], "retries": 2,
        "tasks": [{"task_id": "only", "operator": EMPTY, "upstream": [], "downstream": [], "retries": 2,
                   "pool": "default_pool", "queue": "default", "images": [], "connections": [], "variables": []}]}]
    assert report["dags_removed"] == [{"dag_id": "papermill_example", "file": "dags/papermill_example.py"}]
    assert report["not_compared"] == []
    broken = {"file": "dags/broken.py", "error": "RuntimeError: half-written"}
    lookup = {"file": "dags/lookup.py", "error": LOOKUP_ERROR}
    assert report["parse_errors"] == {"base": [], "head": [broken, lookup]}
    changed = {d["dag_id"]: d for d in report["dags_changed"]}
    assert list(changed) == ["etl_postgres_orders", "example_bash_operator", "k8s_project_example"]
    etl = changed["etl_postgres_orders"]
    assert etl["changes"] == [{"field": "owners", "before": ["data-platform"], "after": ["analytics"]}]
    assert not any(etl[k] for k in ("tasks_added", "tasks_removed", "tasks_renamed", "edges_added",
                                    "edges_removed", "task_changes"))
    bash = changed["example_bash_operator"]
    assert bash["changes"] == [{"field": "schedule", "before": "0 0 * * *", "after": "0 6 * * *"},
                               {"field": "catchup", "before": False, "after": True}]
    assert bash["tasks_added"] == [{"task_id": "notify", "operator": BASH, "upstream": ["run_after_loop"],
                                    "downstream": [], "retries": 1, "pool": "notifications", "queue": "alerts",
                                    "images": [], "connections": [], "variables": ["notify_channel"]}]
    assert bash["tasks_removed"] == []
    assert bash["tasks_renamed"] == [{"before": "also_run_this", "after": "also_run"}]
    assert bash["edges_added"] == [["run_after_loop", "notify"]]
    assert bash["edges_removed"] == [["run_after_loop", "run_this_last"]]
    assert bash["task_changes"] == []
    k8s = changed["k8s_project_example"]
    assert k8s["task_changes"] == [
        {"task_id": "extract_orders", "field": "retries", "before": 1, "after": 3},
        {"task_id": "summarise_orders", "field": "images", "before": ["etl-basic:latest"],
         "after": ["pandas-basic:latest"]}]
    assert k8s["uses"] == {
        "extract_orders": {"images": ["etl-basic:latest"], "connections": ["kubernetes_default"], "variables": []},
        "summarise_orders": {"images": ["pandas-basic:latest"], "connections": ["kubernetes_default"],
                             "variables": []}}
    assert not any(k8s[k] for k in ("changes", "tasks_added", "tasks_removed", "tasks_renamed", "edges_added",
                                    "edges_removed"))


def test_markdown_for_a_pull_request(scratch, tmp_path):
    root, base = scratch
    out = tmp_path / "report" / "dag-diff.md"
    result = dag_diff(root, "main", "--output", str(out))
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == f"dag-diff: report written to {out}"
    assert out.read_text() == f"""## DAG changes: main ({base[:10]}) → working tree

**Parse errors**

| side | file | error |
| --- | --- | --- |
| working tree | `dags/broken.py` | RuntimeError: half-written |
| working tree | `dags/lookup.py` | {LOOKUP_ERROR} |

### `new_dag`: added (`dags/new_dag.py`)

- schedule `None`, catchup `False`, owners `analytics`, retries `2`

| task | operator | upstream | uses |
| --- | --- | --- | --- |
| `only` | `{EMPTY}` | none | - |

### `papermill_example`: removed (`dags/papermill_example.py`)

### `etl_postgres_orders`: changed (`dags/etl_postgres.py`)

- owners: `data-platform` → `analytics`

<details><summary>What its tasks use</summary>

| task | uses |
| --- | --- |
| `check` | connections: `warehouse_db` |
| `create_tables` | connections: `warehouse_db` |
| `load` | connections: `warehouse_db` |
| `transform` | connections: `warehouse_db`; variables: `etl_min_order_amount` |

</details>

### `example_bash_operator`: changed (`dags/example_bash_operator.py`)

- schedule: `0 0 * * *` → `0 6 * * *`
- catchup: `False` → `True`
- task added: `notify` (`{BASH}`); variables: `notify_channel`
- task renamed: `also_run_this` → `also_run`
- edge added: `run_after_loop >> notify`
- edge removed: `run_after_loop >> run_this_last`

<details><summary>What its tasks use</summary>

| task | uses |
| --- | --- |
| `notify` | variables: `notify_channel` |

</details>

### `k8s_project_example`: changed (`dags/k8s_project_example.py`)

| task | field | before | after |
| --- | --- | --- | --- |
| `extract_orders` | retries | `1` | `3` |
| `summarise_orders` | images | `etl-basic:latest` | `pandas-basic:latest` |

<details><summary>What its tasks use</summary>

| task | uses |
| --- | --- |
| `extract_orders` | images: `etl-basic:latest`; connections: `kubernetes_default` |
| `summarise_orders` | images: `pandas-basic:latest`; connections: `kubernetes_default` |

</details>

"""


def test_no_changes_against_the_working_trees_own_commit(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(paths.repo_root() / "dags", root / "dags",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "images.json"))
    git(root, "init", "--quiet")
    git(root, "add", "dags")
    git(root, "commit", "--quiet", "-m", "DAGs")
    result = dag_diff(root, "HEAD")
    head = git(root, "rev-parse", "HEAD")
    assert result.stdout == f"## DAG changes: HEAD ({head[:10]}) → working tree\n\nNo DAG changes.\n\n"


def test_a_bad_ref_is_one_line(scratch):
    root, _ = scratch
    result = dag_diff(root, "no-such-branch", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: REF 'no-such-branch' is not a commit in {root}: give a branch, tag or commit"]


def test_no_main_and_no_ref_is_one_line(tmp_path):
    root = tmp_path / "repo"
    (root / "dags").mkdir(parents=True)
    (root / "dags" / "x.py").write_text("")
    git(root, "init", "--quiet", "--initial-branch", "trunk")
    git(root, "add", "dags")
    git(root, "commit", "--quiet", "-m", "one")
    result = dag_diff(root, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: no REF given and no merge base of HEAD with main or origin/main: "
        "pass one, e.g. `nox -s dag-diff -- origin/main`"]
