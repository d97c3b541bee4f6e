"""Airflow's local settings for the local env only (Airflow imports this module when it is on ``sys.path``).

The local env puts this folder on its services' ``PYTHONPATH``; nothing deployed has it. See
:mod:`airstack.localenv.pod_policy`.
"""

from airstack.localenv.pod_policy import task_policy

__all__ = ["task_policy"]
