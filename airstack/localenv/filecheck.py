"""What a DAG file defines, established by parsing it once with the runtime's own Airflow.

Airflow records a file's DAGs (their ``relative_fileloc``) and its import error, but nothing for a
file that defines no DAG. ``up`` (ready.py) asks this module about the files the DAG processor has
not recorded yet: each is parsed into a DagBag of its own, the way the DAG processor parses a file
(``BundleDagBag(dag_folder=FILE, bundle_path=FOLDER)``, safe mode from Airflow's configuration).

It runs in the runtime's Python, with the services' configuration: a subprocess of the native
runtime (``python -m airstack.localenv.filecheck FOLDER FILE...``), ``python -c`` of this source in
the docker runtime's scheduler container, the one that mounts this package. So it imports nothing but the
standard library and Airflow's seam (:mod:`airstack.airflow_compat`). The answer is one marked line on stdout
(Airflow may log there too)::

    PARSED={"a.py": {"dags": ["a"], "error": null}, "helper.py": {"dags": [], "error": null}}
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MARK = "PARSED="


def parse(folder: str, files: list[str]) -> dict[str, dict]:
    """Each file's DAG ids and import error (None: it imported), each file parsed on its own."""
    from airstack import airflow_compat

    found = {}
    for file in files:
        bag = airflow_compat.new_dagbag(Path(folder), os.path.join(folder, file))
        errors = list(bag.import_errors.values())
        found[file] = {"dags": sorted(bag.dags), "error": errors[0] if errors else None}
    return found


def answer(stdout: str) -> dict[str, dict] | None:
    """The answer in a run's output (None: there is none)."""
    marked = [line for line in stdout.splitlines() if line.startswith(MARK)]
    return json.loads(marked[-1].removeprefix(MARK)) if marked else None


def main(argv: list[str]) -> int:
    found = parse(argv[0], argv[1:])
    sys.stdout.flush()
    print(MARK + json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
