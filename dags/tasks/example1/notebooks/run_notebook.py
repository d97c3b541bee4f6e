"""Runs in the example1 project's pod: papermill's own command line, after making the output's folder.

``python run_notebook.py INPUT.ipynb OUTPUT.ipynb [papermill options]`` is ``papermill`` with the
same arguments, except that the executed notebook's folder is created first (papermill refuses
to write into a folder that does not exist, and a run's artifact folder never exists yet).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    positional = [arg for arg in argv[:2] if not arg.startswith("-")]
    if len(positional) != 2:
        raise SystemExit("usage: run_notebook.py INPUT.ipynb OUTPUT.ipynb [papermill options]")
    output = positional[1]
    if "://" not in output:  # papermill also writes to s3://, gs://, ...: those need no folder
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    from papermill.cli import papermill

    papermill.main(args=argv, prog_name="papermill")


if __name__ == "__main__":
    main(sys.argv[1:])
