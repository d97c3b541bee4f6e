"""The gate: what ``nox -s test``, ``nox -s test-platform`` and ``nox -s lint`` run, and their verdict.

- :mod:`.testrun`: the lanes (``python -m airstack.gate.testrun gate|platform``), run side by side;
- :mod:`.lint`: the linters (``python -m airstack.gate.lint``, the ``lint`` lane);
- :mod:`.affected`: what a change affects (``--changed-since REF``): DAGs, images, environments, tests;
- :mod:`.pytest_affected`: the pytest plugin that selects the affected tests (pyproject's addopts);
- :mod:`.pytest_tally`: the pytest plugin that counts what a lane checked (``--tally FILE``);
- :mod:`.report`: each lane's verdict from its exit code and its report, and the gate's (pure).

May import: airstack's base modules (errors, cli, paths, proc, verdict). Not the DAG tooling (the lanes
run it in processes of their own) nor the settings, images, local env, deploy, upgrade or bench: the
images' ``--changed-since`` and the upgrade's lint step import this package.
"""
