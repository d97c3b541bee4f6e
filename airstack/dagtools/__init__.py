"""The DAG tooling: what checks, runs and compares the DAG files under dags/.

- :mod:`.check`: integrity, policy and templates per file (``python -m airstack.dagtools.check``,
  ``nox -s dag-check``);
- :mod:`.runs`: the DAG-run harness (``dag.test()`` in workers forked from a warm parent);
- :mod:`.snapshot`: a folder's DAGs, parsed in a process of its own, as JSON;
- :mod:`.diff`: two snapshots compared (``python -m airstack.dagtools.diff``, ``nox -s dag-diff``).

May import: Airflow's public modules (its internals only through :mod:`airstack.airflow_compat`), and
airstack's base modules (errors, cli, output, paths, proc, verdict, config_files, airflow_env, airflow_compat).
Not the settings, images, local env, deploy, upgrade, gate or bench: they import this package (the deploy
runs the checks, the local env reads a run's failures).
"""
