"""deploy.yaml's ``airflow.database_cleanup`` as the official chart's ``databaseCleanup`` CronJob.

The metadata database only grows unless something deletes old rows; Airflow 3 tasks should not reach
it directly, so ``airflow db clean`` runs in the chart's CronJob (chart 1.19.0:
templates/database-cleanup/database-cleanup-cronjob.yaml), on the runtime image by digest, with the
metadata connection from the same Secret as every Airflow pod.

The chart's default ``args`` compute the cutoff with GNU ``date`` in ``bash -c`` and ``exec airflow db
clean``; the runtime image has both (a Debian base), and its ENTRYPOINT (``airflow``) is replaced by the
``command``. Ours are the same shape, written here so that the flags are ours:

- ``--skip-archive``: the archive tables (``_airflow_deleted__*``) would keep every purged row in the
  same database; the database's backups (RDS snapshots) are the archive;
- ``--error-on-cleanup-failure`` where the image's Airflow has it (3.2.2 and 3.3.2 do; checked with their
  ``airflow db clean --help``), so a table that could not be cleaned fails the Job instead of passing.

The Airflow version is the runtime lock's (``requirements/runtime.txt``, which the image installs).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from packaging.version import Version

from airstack.errors import ConfigError
from airstack.settings.deploy_file import DatabaseCleanup

ERROR_FLAG_SINCE = Version("3.2.2")  # the oldest release checked here whose `airflow db clean` has the flag
CUTOFF = "$CLEAN_TS"  # the shell variable the script sets (the chart's name for it)
_AIRFLOW_PIN = re.compile(r"^apache-airflow==([^\s\\;]+)", re.MULTILINE)


def error_flag(airflow_version: str) -> list[str]:
    """``--error-on-cleanup-failure`` if that Airflow's ``airflow db clean`` takes it."""
    return ["--error-on-cleanup-failure"] if Version(airflow_version) >= ERROR_FLAG_SINCE else []


def clean_argv(cutoff: str, airflow_version: str) -> list[str]:
    """``airflow db clean`` for everything older than ``cutoff`` (an ISO timestamp, or :data:`CUTOFF`)."""
    return ["airflow", "db", "clean", "--clean-before-timestamp", cutoff, "--yes", "--skip-archive", "--verbose",
            *error_flag(airflow_version)]


def script(retention_days: int, airflow_version: str) -> str:
    """What the CronJob's ``bash -c`` runs: the cutoff ``retention_days`` before now (UTC), then the clean."""
    words = " ".join(f'"{CUTOFF}"' if a == CUTOFF else shlex.quote(a) for a in clean_argv(CUTOFF, airflow_version))
    return (f'CLEAN_TS="$(date -u -d "-{int(retention_days)} days" +%Y-%m-%dT%H:%M:%S+00:00)" && '
            f'echo "airflow db clean: rows older than $CLEAN_TS ({int(retention_days)} days)" && exec {words}')


def values(cleanup: DatabaseCleanup | None, airflow_version: str) -> dict:
    """The chart's ``databaseCleanup`` values ({} without a retention: the chart's default, off)."""
    if cleanup is None:
        return {}
    return {"databaseCleanup": {
        "enabled": True,
        "schedule": cleanup.schedule,
        "retentionDays": cleanup.retention_days,  # not read by our args; kept so the values say it
        "command": ["bash", "-c"],  # replaces the image's ENTRYPOINT (`airflow`)
        "args": [script(cleanup.retention_days, airflow_version)],
    }}


def runtime_airflow(root: Path) -> str:
    """The Airflow version the runtime image installs (``requirements/runtime.txt``)."""
    found = _AIRFLOW_PIN.search((root / "requirements" / "runtime.txt").read_text())
    if not found:
        raise ConfigError("requirements/runtime.txt: no apache-airflow==VERSION pin")
    return found.group(1)
