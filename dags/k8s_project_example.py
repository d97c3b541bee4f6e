"""Seed 004: KubernetesPodOperator tasks wired by project name (image, volumes, ConfigMap, Secret).

On Kubernetes each task is a pod; in the local env (`nox -s up`) and in the DAG tests each
runs as a Docker container of the same image (airstack/localenv/pods.py, by a policy only they set).
"""

import pendulum
from airflow.sdk import DAG

from common.defaults import DEFAULT_ARGS, RUN_DAY
from common.kpo import project_pod


with DAG(
    dag_id="k8s_project_example",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["kubernetes", "example"],
    default_args=DEFAULT_ARGS,
):
    extract = project_pod(
        project="example1",
        task_id="extract_orders",
        image="etl-basic",
        script="extract.py",
        arguments=["--date", RUN_DAY],
    )
    summarise = project_pod(
        project="example1",
        task_id="summarise_orders",
        image="etl-basic",
        script="transform.py",
        arguments=["--date", RUN_DAY],
    )
    extract >> summarise
