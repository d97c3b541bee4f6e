"""pytest plugin: ``--changed-since REF`` runs only the tests a change affects (airstack.gate.affected).

Loaded for every test run (``-p airstack.gate.pytest_affected`` in pyproject's addopts). A test
parametrised by ``dag_file``, or marked ``@pytest.mark.dag_file("dags/x.py")``, runs when that
DAG is affected; any other test when its module is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airstack import paths

_SUMMARY = pytest.StashKey[str]()
_AFFECTED = pytest.StashKey[tuple]()
_EMPTIED = pytest.StashKey[str]()


def affected_for(config: pytest.Config, ref: str) -> tuple:
    """airstack.gate.affected.for_ref once per run (the header asks, then collection; git and every source read)."""
    if _AFFECTED not in config.stash:
        from airstack.gate.affected import for_ref

        config.stash[_AFFECTED] = for_ref(paths.repo_root(), ref)
    return config.stash[_AFFECTED]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dag_file(path): a test about one DAG file (runs when it is affected)")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--changed-since", metavar="REF", default=None,
                     help="run only the tests that the changes since git REF affect (airstack.gate.affected)")


def dag_file_of(item: pytest.Item, root: Path) -> str | None:
    """The DAG file a test is about (repo-relative, else absolute): its ``dag_file`` parameter or mark."""
    callspec = getattr(item, "callspec", None)
    dag_file = callspec.params.get("dag_file") if callspec else None
    if dag_file is not None:
        path = Path(dag_file).resolve()
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
    marker = item.get_closest_marker("dag_file")  # a test about one DAG: @pytest.mark.dag_file("dags/x.py")
    return marker.args[0] if marker is not None else None


def _selected(item: pytest.Item, root: Path, affected) -> bool:
    dag_file = dag_file_of(item, root)
    if dag_file is not None:
        return affected.runs_dag(dag_file)
    return affected.runs_test_file(Path(str(item.path)).resolve().relative_to(root).as_posix())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ref = config.getoption("--changed-since")
    if not ref:
        return
    root = paths.repo_root()
    changed, affected = affected_for(config, ref)
    if affected.everything:
        config.stash[_SUMMARY] = f"--changed-since {ref}: {affected.reasons[0]}; running all {len(items)} tests"
        return
    keep = [item for item in items if _selected(item, root, affected)]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
    if dropped and not keep:
        config.stash[_EMPTIED] = f"nothing affected by the change since {ref}"
    dags = ", ".join(sorted(affected.dag_files)) or "none"
    config.stash[_SUMMARY] = (f"--changed-since {ref}: {len(changed)} changed files -> {len(keep)} of "
                              f"{len(keep) + len(dropped)} tests (DAGs: {dags})")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """What the change affects, in the header (also under xdist, whose controller collects nothing)."""
    ref = config.getoption("--changed-since")
    if not ref:
        return []
    changed, affected = affected_for(config, ref)
    if affected.everything:
        return [f"--changed-since {ref}: {affected.reasons[0]}: every test runs"]
    return [f"--changed-since {ref}: {len(changed)} changed files; DAGs affected: "
            f"{', '.join(sorted(affected.dag_files)) or 'none'}; test modules: {len(affected.test_files)}"]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _SUMMARY in config.stash:
        terminalreporter.write_line(config.stash[_SUMMARY])


def emptied_by_change(config: pytest.Config) -> str:
    """'nothing affected by the change since REF' where ``--changed-since`` left no test of a selection that
    had some (an empty selection by design), else ''."""
    return config.stash.get(_EMPTIED, "")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Nothing affected is a success, not pytest's "no tests collected" (exit 5); a selection that was empty
    before the change was looked at (``-k`` matching nothing) stays exit 5."""
    if emptied_by_change(session.config) and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
