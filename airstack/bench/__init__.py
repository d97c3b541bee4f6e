"""``python -m airstack.bench [NAME ...]`` (``nox -s bench -- NAME``): benchmarks, each writing
benchmarks/results/NAME.json (:func:`airstack.bench.common.write_result`).

One module per benchmark, each with ``run(args)``; :data:`BENCHMARKS` maps a NAME to its module:

- ``test-suite`` (``gate``): wall time of ``nox -s test -R`` (warm: the venvs exist), where the time went;
- ``test-cold`` (``gate_cold``): a clean clone to a green ``nox -s test``, installs included;
- ``dag-integrity-scale`` (``dag_integrity_scale``): the integrity check over 100, 300 and 1,000
  generated DAG files, in a pool of one worker per core; seconds per file at each size;
- ``settings-import`` (``settings_import``): 50 connections + 50 variables into a real Postgres
  metadata database: one ``airflow`` CLI process per item, airstack's importer in process, and as a
  whole command;
- ``settings-apply-large`` (``settings_apply_large``): ``settings-apply`` of large files (1 MiB values;
  250 to 1,000 items), phase by phase;
- ``images-noop`` (``images_noop``): ``build-images`` with nothing to do against a cached ``docker build``;
- ``up-native`` (``up_native``), ``up-docker`` (``up_docker``): warm and cold ``up`` until every DAG file
  is parsed, phase by phase, ``down`` and ``restart`` (native: against ``airflow standalone``; the PSS);
- ``dag-refresh`` (``dag_refresh``): while up, an edited DAG file and a new one, until the REST API shows
  them;
- ``affected`` (``affected``): one DAG file changed: the gate with ``--changed-since`` against the full gate;
- ``deploy-noop`` (``deploy_noop``): ``deploy-plan`` with nothing changed, against moto and the helm
  stand-in (:mod:`airstack.standins`), in a process of its own.

Shared parts: ``common`` (the result file), ``airflow_db`` (the settings
benchmarks' Airflow on their Postgres), ``local_env`` (``up``/``down`` timed in a scratch copy, PSS).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

BENCHMARKS: dict[str, str] = {
    "test-suite": "gate",
    "test-cold": "gate_cold",
    "dag-integrity-scale": "dag_integrity_scale",
    "settings-import": "settings_import",
    "settings-apply-large": "settings_apply_large",
    "images-noop": "images_noop",
    "up-native": "up_native",
    "up-docker": "up_docker",
    "dag-refresh": "dag_refresh",
    "deploy-noop": "deploy_noop",
    "affected": "affected",
}


def load(name: str) -> Callable:
    """The ``run(args)`` of the benchmark NAME."""
    return importlib.import_module(f"{__name__}.{BENCHMARKS[name]}").run
