"""The gate's lanes on real pytest runs: what they count, an empty selection, the chart unavailable, warnings.

Each runs the lane's own command line (airstack.gate.testrun.gate_lanes) in a subprocess, as `nox -s test` does, and
settles it with airstack.gate.report. Issue 23: a lane says `ok` only when it checked.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import pytest

from airstack import paths, proc
from airstack.gate import report, testrun
from airstack.verdict import INCOMPLETE, OK, PARTIAL, capability_of, required

CHARTS = testrun.CHART_TESTS
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once


def run_side_lane(name: str, pytest_args: list[str], folder: Path, changed_since: str | None = None,
                  require: frozenset[str] = frozenset()) -> report.LaneResult:
    """One side lane of the gate, started and waited for by the gate's own machinery, then settled."""
    _, side = testrun.gate_lanes(argparse.Namespace(changed_since=changed_since), pytest_args, folder)
    (lane,) = [lane for lane in side if lane.name == name]
    testrun._start(lane, folder).join()
    (result,) = testrun.settle_lanes([lane], set(require))
    result.log = lane.log.read_text(errors="replace")
    return result


def test_the_tally_plugin_counts_a_real_run(tmp_path):
    (tmp_path / "test_mixed.py").write_text(textwrap.dedent('''
        import pytest
        from airstack.verdict import lacking

        @pytest.fixture
        def database():
            raise ConnectionError("no database here")

        @pytest.fixture
        def postgres():  # as tests/conftest.py's, where no Postgres provider is found
            pytest.fail("no Postgres provider: install PostgreSQL or start Docker", pytrace=False)

        def test_passes(): pass
        def test_needs_postgres(postgres): pass
        def test_fails(): assert False
        def test_skips_by_design(): pytest.skip("runs elsewhere")
        def test_lacks_the_chart(): pytest.skip(lacking("official-chart", "no network"))
        def test_cannot_set_up(database): pass

        @pytest.fixture
        def breaks_on_teardown():
            yield
            raise RuntimeError("cleanup failed")

        def test_passes_then_teardown_fails(breaks_on_teardown): pass
    '''))
    out = tmp_path / "tally.json"
    result = proc.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *testrun.TALLY, f"--tally={out}",
                       "-q", "test_mixed.py"], cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stdout
    tally = json.loads(out.read_text())["tally"]
    assert (tally["passed"], tally["failed"], tally["skipped"]) == (1, 2, 1)
    assert tally["not_run"] == {"setup failed: ConnectionError: no database here": 1,
                                "setup failed: no Postgres provider: install PostgreSQL or start Docker": 1}
    assert [capability_of(r) for r in tally["lacking"]] == ["official-chart"]


def test_an_empty_selection_makes_the_lane_incomplete(tmp_path):
    """pytest's exit 5 (no tests collected) was a pass: the lane now reads `incomplete`, and the gate fails."""
    result = run_side_lane("charts", [CHARTS, "-k", "no_test_is_named_like_this"], tmp_path)
    assert result.code == report.NO_TESTS_COLLECTED
    assert result.word == INCOMPLETE, result.log
    assert result.reasons == ["1 × could not run: no tests collected (pytest exit 5): the selection is empty"]
    assert report.gate_exit_code([result]) == 1


def git(root: Path, *args: str) -> None:
    proc.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=root)


def test_a_change_that_affects_no_chart_test_says_so(tmp_path, monkeypatch):
    """Empty by design (`--changed-since REF`, nothing affected): `ok`, and the lane says why it has nothing."""
    root = paths.scratch_copy(tmp_path / "repo", ("tests", "charts", "settings", "dags", "images"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "scratch")
    (root / "dags" / "example_bash_operator.py").write_text("# a DAG change: no chart test is about it\n")
    monkeypatch.setenv("AIRSTACK_ROOT", str(root))
    result = run_side_lane("charts", [], tmp_path, changed_since="HEAD")
    assert (result.code, result.word, result.note) == (0, OK, "nothing affected by the change since HEAD"), \
        result.log
    assert report.last_line([result]) == "gate: ok: nothing affected by the change since HEAD"
    # A `-k` that matches nothing empties the selection before the change is looked at: not by design.
    narrowed = run_side_lane("charts", [CHARTS, "-k", "no_test_is_named_like_this"], tmp_path, changed_since="HEAD")
    assert (narrowed.code, narrowed.word, narrowed.note) == (report.NO_TESTS_COLLECTED, INCOMPLETE, "")


@pytest.fixture
def no_official_chart(tmp_path, monkeypatch):
    """No cache, no AIRSTACK_OFFICIAL_CHART, and the chart's repository refuses the connection."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("AIRSTACK_OFFICIAL_CHART", raising=False)
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, UNREACHABLE)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_without_the_official_chart_the_charts_lane_is_partial(no_official_chart, tmp_path, capsys):
    result = run_side_lane("charts", [CHARTS, "-k", "official"], tmp_path)
    assert result.code == 0 and result.word == PARTIAL, result.log
    assert result.tally.passed > 0 and result.tally.failed == 0
    (reason,) = result.tally.lacking
    assert capability_of(reason) == "official-chart" and "AIRSTACK_OFFICIAL_CHART" in reason
    assert result.tally.lacking[reason] >= 4  # the renderings of both environments with both executors, at least
    assert report.gate_exit_code([result]) == 0
    testrun._report([], [result])
    shown = capsys.readouterr().out
    last = shown.rstrip().splitlines()[-1]
    assert last.startswith(f"gate: partial: {result.tally.passed} passed, {result.tally.lacking[reason]} could not "
                           "run (lacks official-chart: the official chart")
    table = " ".join(shown.split(last)[0].replace("│", " ").split())  # the table's cells, wrapping undone
    assert f"{result.tally.lacking[reason]} × could not run, lacks official-chart: the official chart" in table


def test_where_the_official_chart_is_required_its_lack_fails_the_gate(no_official_chart, tmp_path):
    one = f"{CHARTS}/test_official_render.py::test_the_official_chart_renders_valid_kubernetes"
    result = run_side_lane("charts", [one], tmp_path,
                           require=frozenset(required({"AIRSTACK_REQUIRE": "official-chart"})))
    assert result.code == 0 and result.word == INCOMPLETE, result.log
    assert report.gate_exit_code([result]) == 1
    assert report.last_line([result]).startswith("gate: incomplete: 0 passed, 4 could not run (lacks official")


def test_without_docker_the_pod_dag_tests_could_not_run(tmp_path):
    """The DAG lane's pytest on the pod DAGs' container tests, with no Docker daemon: `partial`, lacks docker."""
    dags, _ = testrun.gate_lanes(argparse.Namespace(changed_since=None), ["tests/dags/test_kpo_local.py"], tmp_path)
    argv = [a for a in dags.argv if a != "--prestart"]
    result = proc.run([*argv, "-p", "no:cacheprovider"], cwd=paths.repo_root(), check=False,
                      env={"DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}"})
    lane = report.settle("dags", result.returncode, report.read_report(dags.report), pytest=True)
    assert (lane.code, lane.word) == (0, PARTIAL), result.stdout
    assert [capability_of(r) for r in lane.tally.lacking] == ["docker"]
    assert lane.tally.could_not_run == lane.tally.ran + lane.tally.could_not_run > 0


WARNING_DAG = '''
"""A DAG file that warns at parse time, and imports what makes a third-party warning."""
import warnings

from starlette.testclient import TestClient  # noqa: F401  Starlette warns about httpx: not the team's business

from airflow.sdk import DAG

warnings.warn("team_warning: this DAG still uses the old helper", DeprecationWarning)

with DAG("warns", schedule=None, catchup=False, tags=["example"], default_args={"owner": "t", "retries": 1}):
    pass
'''


def test_third_party_noise_is_filtered_but_a_dag_file_warning_shows(tmp_path):
    """The DAG lane's pytest (its own command line, on a DAGs folder of one file): the team's warning is in the
    warnings summary; Starlette's httpx deprecation, raised in the same parse, and pathspec's, raised reading
    .airflowignore, are not (with `-W default`, which undoes the filters, they are: the filters hide them)."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "warns.py").write_text(WARNING_DAG)
    (folder / ".airflowignore").write_text("common/\n")  # Airflow reads it with pathspec's deprecated pattern
    dags, _ = testrun.gate_lanes(argparse.Namespace(changed_since=None), ["tests/dags/test_dag_integrity.py"],
                                 tmp_path)
    argv = [a for a in dags.argv if a != "--prestart"]  # the integrity test needs no Postgres
    env = {"AIRSTACK_DAGS_FOLDER": str(folder)}
    runs = {flags: proc.run([*argv, "-p", "no:cacheprovider", *flags], cwd=paths.repo_root(), env=env,
                            check=False).stdout for flags in ((), ("-W", "default"))}
    filtered, unfiltered = runs[()], runs[("-W", "default")]
    assert "team_warning: this DAG still uses the old helper" in filtered, filtered
    for noise in ("starlette.testclient", "GitWildMatchPattern ('gitwildmatch') is deprecated"):
        assert noise in unfiltered, unfiltered
        assert noise not in filtered, filtered
