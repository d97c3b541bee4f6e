"""DAG integrity: parse every file under dags/ with real Airflow and apply the team's policy.

- :mod:`.policy` loads the rules from ``[tool.airstack.dag-policy]`` in pyproject.toml;
- :mod:`.rules` checks a parsed DAG, a file's imports and its parse-time values (pure, unit-tested);
- :mod:`.templates` renders every templated field against a synthetic task context;
- :mod:`.parse` imports a file through Airflow's DagBag while counting SQL statements
  and catching connection/variable access, and runs the rules;
- :mod:`.main` is the command line (``python -m airstack.dagtools.check``).
"""
