"""The local Airflow environment (`nox -s up`).

- :mod:`.config`: paths, ports, the services and their environment (pure);
- :mod:`.native`: the native runtime: an embedded Postgres and the Airflow services as
  processes from the project's lock, everything on 127.0.0.1;
- :mod:`.health`: waiting on Postgres and ``/api/v2/monitor/health``, never on sleep;
- :mod:`.pods`: KubernetesPodOperator tasks as local Docker containers (``common.kpo`` imports it
  in the local env and the DAG tests only; it is not part of the DAG bundle);
- :mod:`.main`: up, down, restart, status, logs, shell, clean, run.
"""
