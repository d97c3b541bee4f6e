"""Defaults every DAG starts from: an owner and retries, as the DAG policy requires."""

from __future__ import annotations

import datetime

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": datetime.timedelta(minutes=1),
}
