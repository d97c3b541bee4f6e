import os
from pathlib import Path


def test_needs_postgres(postgres):
    with Path(os.environ["AIRSTACK_XDIST_SAMPLE_RECORD"]).open("a") as record:
        record.write(f"postgres {os.environ.get('PYTEST_XDIST_WORKER')}\n")
