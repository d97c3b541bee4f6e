"""The papermill example runs its notebook in the real etl-basic image, with its pods as local Docker containers.

Real parts: the etl-basic image built from images/etl-basic (papermill, ipykernel), a real Docker
daemon, dag.test() on Postgres, the project's ConfigMap/Secret values from settings/local (sops).
The executed notebook is validated by nbformat inside that image (the test environment has no
nbformat).
"""

from __future__ import annotations

import json

import pytest

from airstack import paths
from airstack.docker_client import get_client
from tests.dags.conftest import run_here

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
LABEL = "airstack.test=papermill"
NOTEBOOK = "tasks/example1/notebooks/orders_report.ipynb"
# settings/local's example1 config: MIN_ORDER_AMOUNT=10 drops initech's 5.25 and acme's 4.00.
EXPECTED = {"min_amount": "10", "orders": 5, "orders_kept": 3, "totals": {"acme": "177.50", "globex": "349.99"},
            "total": "527.49"}
VALIDATE = """
import sys
import nbformat
for path in sys.argv[1:]:
    nbformat.validate(nbformat.read(path, as_version=nbformat.NO_CONVERT))
    print("valid:", path)
"""


def _validate_in_image(image: str, artifacts) -> str:
    """nbformat.validate on the committed notebook and the executed one, in the image that has nbformat."""
    from docker.types import Mount

    mounts = [Mount("/nb/src", str(paths.dags_folder() / NOTEBOOK), type="bind", read_only=True),
              Mount("/nb/out", str(artifacts), type="bind", read_only=True)]
    out = get_client().containers.run(
        image, ["python", "-c", VALIDATE, "/nb/src", "/nb/out/orders_report.ipynb"], mounts=mounts,
        user="1000", network_mode="none", remove=True, labels=dict([LABEL.split("=")]))
    return out.decode()


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.dag_file("dags/papermill_example.py")  # --changed-since: runs when the DAG, notebook or image does
def test_papermill_example_saves_the_executed_notebook(local_pods_env):
    run = run_here("papermill_example.py", "papermill_example", logs="papermill")
    assert run.ok, run.explain()
    assert run.tasks == {"extract_orders": "success", "orders_report": "success"}

    # The artifact: the executed notebook in the project's sub-path of the data claim, and its summary.
    day = (run.logical_date or run.run_after).strftime("%Y-%m-%d")  # what the DAG's `| ds` rendered
    artifacts = local_pods_env["data"] / "example1" / "artifacts" / day
    assert sorted(p.name for p in artifacts.iterdir()) == ["orders_report.ipynb", "orders_report.json"]
    nb = json.loads((artifacts / "orders_report.ipynb").read_text())
    assert _validate_in_image(local_pods_env["image"], artifacts).split() == [
        "valid:", "/nb/src", "valid:", "/nb/out/orders_report.ipynb"]
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"

    # papermill injected the run's day right after the `parameters` cell, and recorded it.
    tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
    at = tags.index(["parameters"])
    assert tags[at + 1] == ["injected-parameters"]
    assert f'day = "{day}"' in "".join(nb["cells"][at + 1]["source"])
    assert nb["metadata"]["papermill"]["parameters"] == {"day": day}
    assert nb["metadata"]["papermill"]["exception"] is None

    # Every code cell ran, in order; there are outputs and none is an error.
    cells = _code_cells(nb)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    outputs = [o for c in cells for o in c["outputs"]]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]
    assert any("527.49 EUR" in "".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")

    # The computed result: the ConfigMap's currency and minimum, the day's orders from extract_orders.
    summary = json.loads((artifacts / "orders_report.json").read_text())
    currency = local_pods_env["project"].config["REPORT_CURRENCY"]
    assert summary == {"day": day, "currency": currency, **EXPECTED} and currency == "EUR"
    result = cells[-1]["outputs"][-1]
    assert result["output_type"] == "execute_result" and "'total': '527.49'" in "".join(result["data"]["text/plain"])
    # delete_succeeded_pod (and remove=True for the validation): nothing left behind.
    assert get_client().containers.list(all=True, filters={"label": LABEL}) == []
