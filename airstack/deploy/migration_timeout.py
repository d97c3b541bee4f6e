"""A migration that outlasts ``helm upgrade --atomic --timeout`` is reported as such, not as a rollback that undid it.

The official chart's migration Job (``<release>-run-airflow-migrations``, a plain Job: charts/airflow/values.yaml)
starts with the upgrade, and every Airflow pod waits for its schema (:mod:`airstack.deploy.schema_wait`), so a long
migration keeps the pods unready until Helm's ``--timeout``. Helm then rolls the release back (``--atomic``,
Helm 4's ``--rollback-on-failure``), or uninstalls a first install, and says so::

    Error: UPGRADE FAILED: release airflow failed, and has been rolled back due to rollback-on-failure being set:
    resource Deployment/airflow/airflow-scheduler not ready. status: InProgress, message: Available: 0/1
    context deadline exceeded

(Helm 3: ``... due to atomic being set: timed out waiting for the condition`` or ``context deadline exceeded``;
Helm's pkg/action upgrade.go/install.go and its kstatus waiter.) A rollback does not undo the migration, nor stop
a Job that is running: the database may be migrated, or still migrating, ahead of the pods Helm went back to.
:func:`reported` turns that error into what happened and what to do (the snapshot to restore, where one was
taken). Pure but for the context manager, which only translates the exception.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from airstack.errors import AirstackError

ROLLED = re.compile(r"release (?P<release>\S+) failed, and has been (?P<how>rolled back|uninstalled) due to "
                    r"(?:atomic|rollback-on-failure) being set")
ROLLBACK_FAILED = re.compile(r"an error occurred while (?:rolling back|uninstalling) the release")
TIMEOUT = ("context deadline exceeded", "timed out waiting for the condition")


class MigrationTimeoutError(AirstackError):
    """The official chart's upgrade ran past its timeout: the schema may be ahead of the pods."""


@dataclass(frozen=True)
class Timeout:
    release: str
    how: str  # "rolled back", "uninstalled", or "" (Helm could not roll back, or did not try)


def timed_out(stderr: str, release: str) -> Timeout | None:
    """``release``'s upgrade ran past Helm's timeout, as Helm's stderr says (pure); None: another failure."""
    if not any(words in stderr for words in TIMEOUT):
        return None
    rolled = ROLLED.search(stderr)
    if rolled and rolled.group("release") != release:
        return None
    return Timeout(release, rolled.group("how") if rolled and not ROLLBACK_FAILED.search(stderr) else "")


def job_name(release: str) -> str:
    """The official chart's (1.19.0) migration Job."""
    return f"{release}-run-airflow-migrations"


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1] if name in argv[:-1] else ""


def message(found: Timeout, argv: list[str], env: str, snapshot=None) -> str:
    """What happened and what to do, for the helm ``argv`` that timed out (pure)."""
    context, namespace, timeout = _option(argv, "--kube-context"), _option(argv, "--namespace"), \
        _option(argv, "--timeout")
    job = job_name(found.release)
    kubectl = f"kubectl --context {context} --namespace {namespace}"
    helm_did = {"rolled back": "Helm rolled the release back", "uninstalled": "Helm uninstalled the new release",
                "": "Helm did not roll it back"}[found.how]
    lines = [
        f"{found.release}: the upgrade ran past its timeout ({timeout or 'helm.timeout'}) and {helm_did}, but that "
        f"does not undo a migration: the migration Job {job} may have migrated the metadata database, or may still "
        "be migrating it, so the schema may now be ahead of the pods (which wait for it at wait-for-migrations).",
        f"  see where it is: {kubectl} get job {job}; {kubectl} logs job/{job}",
        f"  to finish the upgrade: let the Job end, then deploy again (raise helm.timeout in settings/{env}/"
        "deploy.yaml if the migration needs longer); the pods start once the schema is theirs",
    ]
    if snapshot is not None:
        lines.append(f"  to go back instead: stop the Job ({kubectl} delete job {job}), then restore snapshot "
                     f"{snapshot.id} (taken before this deploy): {snapshot.restore_command()}; point "
                     f"settings/{env}/secret.yaml's airflow.metadata_connection at the new instance and deploy the "
                     "commit that ran before")
    else:
        lines.append("  no snapshot was taken before this deploy (not a protected environment, or no schema "
                     "change was expected): going back means a restore from RDS's automated backups")
    return "\n".join(lines)


def official_release(argv: list[str], chart: str) -> str | None:
    """The release of ``helm upgrade --install NAME CHART ...`` where CHART is the official chart's (pure)."""
    if argv[1:3] == ["upgrade", "--install"] and len(argv) > 4 and argv[4] == chart:
        return argv[3]
    return None


@contextlib.contextmanager
def reported(env, snapshot=None) -> Iterator[None]:
    """Helm's timeout of the official chart's upgrade becomes a :class:`MigrationTimeoutError`; any other error
    passes unchanged."""
    from airstack.deploy.helm_binary import HelmError

    try:
        yield
    except HelmError as exc:
        argv = list(exc.argv)
        release = official_release(argv, env.spec.helm.airflow.chart) if env.spec.helm else None
        found = timed_out(exc.stderr, release) if release else None
        if found is None:
            raise
        raise MigrationTimeoutError(message(found, argv, env.name, snapshot)) from None
