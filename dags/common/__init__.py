"""Helpers shared by the DAGs in this folder (excluded from parsing by .airflowignore)."""
