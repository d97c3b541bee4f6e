"""The local Airflow environment (`nox -s up`).

- :mod:`.config`: paths, ports, the services and their environment (pure);
- :mod:`.ports`: each checkout's ports (claimed, recorded) and whether a port is free;
- :mod:`.runtime`: the :class:`~.runtime.Runtime` protocol both runtimes implement, and which one an env uses;
- :mod:`.native`: the native runtime: an embedded Postgres and the Airflow services as
  processes from the project's lock, everything on 127.0.0.1 (:mod:`.launcher`: Airflow imported once,
  the services forked warm);
- :mod:`.docker_runtime`: the docker runtime: the runtime image's containers in one network namespace;
- :mod:`.options`: the options (``--s3``, ``--celery``, ``--metrics``) and their servers;
- :mod:`.bundle`: the DAG bundle: the working tree, or the deployed environments' git bundle on a local remote;
- :mod:`.database`: the metadata database migrated and settings/local imported, once each
  (:mod:`.applied`: what was imported);
- :mod:`.health`, :mod:`.ready`: waiting on ``/api/v2/monitor/health`` and on every DAG file parsed, never on sleep;
- :mod:`.pods`: KubernetesPodOperator tasks as local Docker containers; :mod:`.pod_policy` the cluster
  policy that runs them so, which the local env alone sets (``local_settings/airflow_local_settings.py``
  on its services' ``PYTHONPATH``): the DAGs import no ``airstack``;
- :mod:`.runs`: ``run``: a DAG run triggered and followed through the REST API;
- :mod:`.env`: :class:`~.env.LocalEnv`, the orchestration of up, down, clean, status, logs, shell, run;
- :mod:`.main`: ``python -m airstack.localenv``: argument parsing only.
"""
