"""The folder the local env puts on Airflow's ``PYTHONPATH``: its ``airflow_local_settings`` (see ``pod_policy``)."""
