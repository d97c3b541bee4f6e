"""Seed 000's DAG: Airflow's example_bash_operator, written for the Airflow 3 Task SDK."""

import datetime

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from common.defaults import DEFAULT_ARGS

with DAG(
    dag_id="example_bash_operator",
    schedule="0 0 * * *",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    dagrun_timeout=datetime.timedelta(minutes=60),
    tags=["example"],
    default_args=DEFAULT_ARGS,
    params={"example_key": "example_value"},
):
    run_this_last = EmptyOperator(task_id="run_this_last")
    run_this = BashOperator(task_id="run_after_loop", bash_command="echo https://airflow.apache.org/")
    run_this >> run_this_last

    for i in range(3):
        BashOperator(task_id=f"runme_{i}", bash_command='echo "{{ task_instance_key_str }}"') >> run_this

    also_run_this = BashOperator(
        task_id="also_run_this",
        bash_command='echo "ti_key={{ task_instance_key_str }} example_key={{ params.example_key }}"',
    )
    also_run_this >> run_this_last
