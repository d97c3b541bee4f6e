"""airstack.dagtools.diff's pure part: hand-made snapshots in, the exact diff and Markdown out."""

from __future__ import annotations

import copy

import pytest

from airstack.dagtools import diff
from airstack.dagtools.snapshot import args_digest, callable_uses

BASH = "airflow.providers.standard.operators.bash.BashOperator"
KPO = "common.kpo.ProjectPodOperator"


def task(task_id: str, up=(), down=(), operator=BASH, args="a1", **over) -> dict:
    t = {"task_id": task_id, "operator": operator, "upstream": sorted(up), "downstream": sorted(down), "retries": 1,
         "pool": "default_pool", "queue": "default", "images": [], "connections": [], "variables": [], "args": args}
    t.update(over)
    return t


def dag(dag_id: str = "d", tasks=(), **over) -> dict:
    d = {"dag_id": dag_id, "file": f"dags/{dag_id}.py", "schedule": "@daily", "catchup": False,
         "owners": ["data-platform"], "retries": 1, "tasks": {t["task_id"]: t for t in tasks}}
    d.update(over)
    return d


def chain_dag(**over) -> dict:
    """extract >> transform >> load, with distinct arguments."""
    return dag(tasks=[task("extract", down=["transform"], args="e"),
                      task("transform", up=["extract"], down=["load"], args="t"),
                      task("load", up=["transform"], args="l")], **over)


def snap(*dags, errors=None) -> dict:
    return {"dags": {d["dag_id"]: d for d in dags}, "errors": dict(errors or {})}


def only_change(before: dict, after: dict) -> dict:
    result = diff.diff(snap(before), snap(after))
    assert not result["dags_added"] and not result["dags_removed"]
    (changed,) = result["dags_changed"]
    return changed


EMPTY = {"changes": [], "tasks_added": [], "tasks_removed": [], "tasks_renamed": [], "edges_added": [],
         "edges_removed": [], "task_changes": []}


def expect(changed: dict, **parts) -> None:
    assert {k: changed[k] for k in EMPTY} == {**EMPTY, **parts}


def test_a_changed_dag_lists_what_each_task_uses():
    before = chain_dag()
    after = chain_dag(schedule="@hourly")
    after["tasks"]["extract"].update(images=["etl-basic:latest"], connections=["kubernetes_default"])
    after["tasks"]["load"].update(variables=["target_table"])
    changed = only_change(before, after)
    assert changed["uses"] == {
        "extract": {"images": ["etl-basic:latest"], "connections": ["kubernetes_default"], "variables": []},
        "load": {"images": [], "connections": [], "variables": ["target_table"]}}
    md = diff.render_markdown(diff.diff(snap(before), snap(after)), "b")
    assert ("| `extract` | images: `etl-basic:latest`; connections: `kubernetes_default` |\n"
            "| `load` | variables: `target_table` |\n\n</details>") in md


def test_identical_snapshots_have_no_changes_and_say_so():
    result = diff.diff(snap(chain_dag()), snap(chain_dag()))
    assert not diff.has_changes(result) and result["dags_changed"] == []
    assert diff.render_markdown(result, "main (abc)") == \
        "## DAG changes: main (abc) → working tree\n\nNo DAG changes.\n"


def test_dag_added_and_removed():
    old, new = dag("old_dag", [task("a")]), dag("new_dag", [task("b", images=["etl-basic:latest"])])
    result = diff.diff(snap(old), snap(new))
    assert result["dags_removed"] == [{"dag_id": "old_dag", "file": "dags/old_dag.py"}]
    (added,) = result["dags_added"]
    assert added["dag_id"] == "new_dag" and [t["task_id"] for t in added["tasks"]] == ["b"]
    assert added["tasks"][0]["images"] == ["etl-basic:latest"]
    md = diff.render_markdown(result, "base")
    assert "### `new_dag`: added (`dags/new_dag.py`)" in md and "### `old_dag`: removed (`dags/old_dag.py`)" in md
    assert f"| `b` | `{BASH}` | none | images: `etl-basic:latest` |" in md


def test_task_added_with_its_edge():
    after = chain_dag()
    after["tasks"]["load"]["downstream"] = ["notify"]
    after["tasks"]["notify"] = task("notify", up=["load"], args="n", connections=["slack"])
    changed = only_change(chain_dag(), after)
    expect(changed, tasks_added=[diff._task_summary(after["tasks"]["notify"])], edges_added=[["load", "notify"]])
    md = diff.render_markdown(diff.diff(snap(chain_dag()), snap(after)), "base")
    assert f"- task added: `notify` (`{BASH}`); connections: `slack`" in md
    assert "- edge added: `load >> notify`" in md


def test_task_removed_with_its_edges():
    before = chain_dag()
    after = dag(tasks=[task("extract", down=["load"], args="e"), task("load", up=["extract"], args="l")])
    expect(only_change(before, after), tasks_removed=["transform"], edges_added=[["extract", "load"]],
           edges_removed=[["extract", "transform"], ["transform", "load"]])


def test_task_renamed_keeps_its_edges():
    after = dag(tasks=[task("extract", down=["clean"], args="e"),
                       task("clean", up=["extract"], down=["load"], args="t"), task("load", up=["clean"], args="l")])
    changed = only_change(chain_dag(), after)
    expect(changed, tasks_renamed=[{"before": "transform", "after": "clean"}])
    assert "- task renamed: `transform` → `clean`" in diff.render_markdown(
        diff.diff(snap(chain_dag()), snap(after)), "base")


def test_a_renamed_task_whose_arguments_changed_is_removed_and_added():
    after = dag(tasks=[task("extract", down=["clean"], args="e"),
                       task("clean", up=["extract"], down=["load"], args="other"),
                       task("load", up=["clean"], args="l")])
    changed = only_change(chain_dag(), after)
    assert changed["tasks_renamed"] == [] and changed["tasks_removed"] == ["transform"]
    assert [t["task_id"] for t in changed["tasks_added"]] == ["clean"]


def test_a_renamed_task_whose_neighbours_changed_is_not_a_rename():
    after = dag(tasks=[task("extract", args="e"), task("clean", down=["load"], args="t"),
                       task("load", up=["clean"], args="l")])
    changed = only_change(chain_dag(), after)
    assert changed["tasks_renamed"] == [] and changed["tasks_removed"] == ["transform"]


def test_two_neighbours_renamed_together_are_both_renames():
    after = dag(tasks=[task("e2", down=["t2"], args="e"), task("t2", up=["e2"], down=["load"], args="t"),
                       task("load", up=["t2"], args="l")])
    changed = only_change(chain_dag(), after)
    expect(changed, tasks_renamed=[{"before": "extract", "after": "e2"}, {"before": "transform", "after": "t2"}])


def test_ambiguous_renames_stay_added_and_removed():
    before = dag(tasks=[task("a", args="x"), task("b", args="x")])
    after = dag(tasks=[task("c", args="x"), task("d", args="x")])
    changed = only_change(before, after)
    assert changed["tasks_renamed"] == [] and changed["tasks_removed"] == ["a", "b"]


def test_edge_changed():
    after = chain_dag()
    after["tasks"]["extract"]["downstream"] = ["load", "transform"]
    after["tasks"]["load"]["upstream"] = ["extract", "transform"]
    expect(only_change(chain_dag(), after), edges_added=[["extract", "load"]])


@pytest.mark.parametrize(("field", "before", "after"), [
    ("schedule", "@daily", "0 6 * * *"), ("catchup", False, True), ("owners", ["data-platform"], ["analytics"]),
    ("retries", 1, 3)])
def test_dag_field_changed(field, before, after):
    changed = only_change(chain_dag(**{field: before}), chain_dag(**{field: after}))
    expect(changed, changes=[{"field": field, "before": before, "after": after}])
    result = diff.diff(snap(chain_dag(**{field: before})), snap(chain_dag(**{field: after})))
    md = diff.render_markdown(result, "b")
    assert f"- {field}: {diff._code(before)} → {diff._code(after)}" in md


@pytest.mark.parametrize(("field", "before", "after"), [
    ("retries", 1, 5), ("pool", "default_pool", "warehouse"), ("queue", "default", "kubernetes"),
    ("images", ["etl-basic:latest"], ["pandas-basic:latest"]), ("connections", ["warehouse_db"], ["other_db"]),
    ("variables", [], ["etl_min_order_amount"]), ("operator", BASH, KPO)])
def test_task_field_changed(field, before, after):
    old, new = chain_dag(), chain_dag()
    old["tasks"]["transform"][field] = before
    new["tasks"]["transform"][field] = after
    expect(only_change(old, new), task_changes=[{"task_id": "transform", "field": field, "before": before,
                                                 "after": after}])
    md = diff.render_markdown(diff.diff(snap(old), snap(new)), "b")
    assert f"| `transform` | {field} | {diff._code(before)} | {diff._code(after)} |" in md


def test_a_file_that_stops_parsing_is_not_a_removed_dag():
    broken = {"dags/d.py": "NameError: name 'x' is not defined"}
    result = diff.diff(snap(chain_dag()), snap(errors=broken))
    assert result["dags_removed"] == [] and result["not_compared"] == ["d"]
    assert result["parse_errors"] == {"base": [], "head": [{"file": "dags/d.py", "error": broken["dags/d.py"]}]}
    md = diff.render_markdown(result, "base")
    assert "| working tree | `dags/d.py` | NameError: name 'x' is not defined |" in md
    assert "Not compared (their file does not parse on one side): `d`" in md


def test_a_file_that_starts_parsing_is_not_an_added_dag():
    result = diff.diff(snap(errors={"dags/d.py": "SyntaxError"}), snap(chain_dag()))
    assert result["dags_added"] == [] and result["not_compared"] == ["d"]


def test_snapshot_copies_are_not_modified():
    before, after = chain_dag(), chain_dag(schedule="@hourly")
    kept = copy.deepcopy((before, after))
    diff.diff(snap(before), snap(after))
    assert (before, after) == kept


WAREHOUSE = "warehouse_db"


def _uses_variables_and_connections():
    from airflow.sdk import Variable  # noqa: F401 - named in the source this test reads

    Variable.get("literal_key")
    Variable.get(WAREHOUSE)
    name = "computed"
    Variable.get(name)  # not a constant: not detected
    return dict(postgres_conn_id=WAREHOUSE, aws_conn_id="aws_default", other=WAREHOUSE)


def test_callable_uses_are_read_from_literals_and_module_constants_only():
    variables, connections = callable_uses(_uses_variables_and_connections)
    assert variables == {"literal_key", "warehouse_db"}
    assert connections == {"warehouse_db", "aws_default"}


class FakePod:
    """What args_digest reads of a task: its id, template_fields and their values."""

    template_fields = ("name", "cmds")

    def __init__(self, task_id: str, cmds: list[str]) -> None:
        self.task_id, self.cmds = task_id, cmds
        self.name = f"example1-{task_id}".replace("_", "-")


def test_args_digest_masks_the_task_id_and_its_dns_form_only():
    same = args_digest(FakePod("extract_orders", ["python", "extract.py"]))
    assert args_digest(FakePod("load_orders", ["python", "extract.py"])) == same
    assert args_digest(FakePod("load_orders", ["python", "load.py"])) != same
