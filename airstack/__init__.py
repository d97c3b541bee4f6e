"""airstack: the tooling behind this Airflow monorepo's nox sessions."""
