"""Seed 004: a KubernetesPodOperator task in the pandas-basic conda image, wired by project name."""

import pendulum
from airflow.sdk import DAG

from common.defaults import DEFAULT_ARGS
from common.kpo import project_pod

with DAG(
    dag_id="k8s_pandas_example",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["kubernetes", "example"],
    default_args=DEFAULT_ARGS,
):
    project_pod(
        project="example1",
        task_id="summarise_orders",
        image="pandas-basic",
        script="transform.py",
        arguments=["--date", "{{ ds }}"],
    )
