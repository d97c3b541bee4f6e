"""The local env's ``airflow_local_settings``, as Airflow itself loads it: from ``PYTHONPATH``, at start.

A fresh interpreter, as a local env's service or task process starts: Airflow imports the module,
registers its task policy, and applies it as it parses a DAG file. The serialized DAG (what the DAG
processor stores, and the DAG's version) is the same as without it.
"""

from __future__ import annotations

import json
import sys

from airstack import paths, proc
from airstack.localenv import pod_policy

PARSE = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.serialization.serialized_objects import DagSerialization
folder = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="dags-folder", collect_dags=False,
                   load_op_links=False)
dag = bag.process_file(str(folder / "k8s_project_example.py"), only_if_updated=False, safe_mode=False)[0]
print(json.dumps({"execute": {t.task_id: type(t.execute).__name__ for t in dag.tasks},
                  "serialized": DagSerialization.serialize_dag(dag)}, default=str, sort_keys=True))
"""


def _parse(tmp_path, **env) -> dict:
    result = proc.run([sys.executable, "-c", PARSE, str(paths.dags_folder())], cwd=paths.repo_root(),
                      env={"AIRFLOW_HOME": str(tmp_path / "home"), "AIRSTACK_LOCAL_PODS": "docker", **env})
    return json.loads(result.stdout.splitlines()[-1])


def test_airflow_applies_the_local_settings_from_pythonpath_and_serializes_the_same(tmp_path):
    local = _parse(tmp_path, PYTHONPATH=pod_policy.python_path(pod_policy.SETTINGS_FOLDER, pod_policy.TOOLING_ROOT))
    assert local["execute"] == {"extract_orders": "LocalPodRun", "summarise_orders": "LocalPodRun"}
    deployed = _parse(tmp_path, PYTHONPATH="")  # no local settings: what a deployed Airflow parses
    assert set(deployed["execute"].values()) == {"method"}
    assert local["serialized"] == deployed["serialized"]
    assert "LocalPodRun" not in json.dumps(local["serialized"])
