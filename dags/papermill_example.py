"""Seed 004's TODO "Papermill working example": a parameterised notebook run headless in a worker pod.

extract_orders lands the day's orders in the example1 project's data folder (as in
k8s_project_example); orders_report runs ``dags/tasks/example1/notebooks/orders_report.ipynb``
with papermill in the pip ``etl-basic`` image, the run's day injected as a parameter. The
executed notebook, outputs included, is the run's artifact: ``artifacts/<day>/orders_report.ipynb``
in the project's data folder (the airflow-data volume on Kubernetes, ``.airstack/local/data/example1``
locally), with the report's ``orders_report.json`` next to it.
"""

import pendulum
from airflow.sdk import DAG

from common.defaults import DEFAULT_ARGS, RUN_DAY
from common.kpo import DAGS_MOUNT, DATA_MOUNT, project_pod

NOTEBOOK = f"{DAGS_MOUNT}/tasks/example1/notebooks/orders_report.ipynb"
ARTIFACT = f"{DATA_MOUNT}/artifacts/{RUN_DAY}/orders_report.ipynb"

with DAG(
    dag_id="papermill_example",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["kubernetes", "reporting", "example"],
    default_args=DEFAULT_ARGS,
):
    extract = project_pod(
        project="example1",
        task_id="extract_orders",
        image="etl-basic",
        script="extract.py",
        arguments=["--date", RUN_DAY],
    )
    # `papermill INPUT OUTPUT ...`, with the output's folder made first (run_notebook.py).
    # -r: the day as a raw string (-p would guess a type). Never pass a secret as a parameter: parameters
    # are written into the artifact (the pod gets the project's Secret as environment variables).
    report = project_pod(
        project="example1",
        task_id="orders_report",
        image="etl-basic",
        script="notebooks/run_notebook.py",
        arguments=[NOTEBOOK, ARTIFACT, "-r", "day", RUN_DAY, "-k", "python3", "--log-output",
                   "--execution-timeout", "300"],
        memory="1Gi",
    )
    extract >> report
