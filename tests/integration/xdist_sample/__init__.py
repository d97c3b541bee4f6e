"""Two test modules for tests/integration/test_xdist_postgres.py (not collected by the gate: no test_ prefix)."""
