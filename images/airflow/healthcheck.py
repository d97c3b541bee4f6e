"""Container healthcheck for the runtime image, by component (AIRFLOW_COMPONENT).

- api-server: GET /api/v2/monitor/health on the local port answers 200;
- scheduler, triggerer, dag-processor: `airflow jobs check --local` finds a live job;
- anything else: Airflow imports.
"""

import os
import subprocess
import sys
import urllib.request

JOBS = {"scheduler": "SchedulerJob", "triggerer": "TriggererJob", "dag-processor": "DagProcessorJob"}


def main() -> int:
    component = os.environ.get("AIRFLOW_COMPONENT", "")
    if component == "api-server":
        port = os.environ.get("AIRFLOW_API_PORT", "8080")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=10) as response:
            return 0 if response.status == 200 else 1
    if component in JOBS:
        argv = ["airflow", "jobs", "check", "--job-type", JOBS[component], "--local"]
        return subprocess.call(argv, stdout=subprocess.DEVNULL)
    import airflow  # noqa: F401

    return 0


if __name__ == "__main__":
    sys.exit(main())
