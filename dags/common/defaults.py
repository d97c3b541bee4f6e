"""Defaults every DAG starts from: an owner and retries, as the DAG policy requires."""

from __future__ import annotations

import datetime

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": datetime.timedelta(minutes=1),
}

# The day a run is for, as a template: its logical date, or when it ran (Airflow 3 manual runs
# may have no logical date).
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
