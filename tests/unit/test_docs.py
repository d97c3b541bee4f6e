"""The documentation site: docs/ builds with mkdocs --strict (what `nox -s docs` runs), and a broken link or
anchor fails that build; the README's links into docs/ point at pages and headings that exist."""

import logging
import re
import shutil
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import Abort

from airstack import paths

AFFECTED_BY = ("docs/", "mkdocs.yml", "README.md")

ROOT = paths.repo_root()
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def build_site(root: Path, site: Path) -> None:
    """Build root's mkdocs.yml strictly into ``site``, as `nox -s docs` does."""
    build(load_config(config_file=str(root / "mkdocs.yml"), strict=True, site_dir=str(site)))


def scratch_copy(tmp_path: Path) -> Path:
    """mkdocs.yml and docs/ in a scratch folder, to break on purpose."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    return copy


def test_the_docs_build_with_no_warning(tmp_path):
    build_site(ROOT, tmp_path / "site")
    assert (tmp_path / "site" / "settings.html").is_file()


@pytest.mark.parametrize("link, complaint", [
    ("[gone](no-such-page.md)", "no-such-page.md"),
    ("[gone](settings.md#no-such-heading)", "no-such-heading"),
    ("[gone](#not-on-this-page)", "not-on-this-page"),
])
def test_a_broken_link_or_anchor_fails_the_build(tmp_path, caplog, link, complaint):
    copy = scratch_copy(tmp_path)
    page = copy / "docs" / "ci.md"
    page.write_text(page.read_text() + f"\nSee {link}.\n")
    with caplog.at_level(logging.WARNING, logger="mkdocs"), pytest.raises(Abort, match="strict mode"):
        build_site(copy, tmp_path / "site")
    assert any(complaint in r.getMessage() and "ci.md" in r.getMessage() for r in caplog.records), caplog.text


def test_every_page_is_in_the_nav(tmp_path):
    copy = scratch_copy(tmp_path)
    (copy / "docs" / "orphan.md").write_text("# Orphan\n")
    with pytest.raises(Abort, match="strict mode"):
        build_site(copy, tmp_path / "site")


def github_slug(text: str) -> str:
    """A heading's anchor on GitHub: lower case, punctuation dropped, each space a hyphen (none folded)."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def headings(page: Path) -> set[str]:
    """The anchors of a page's headings (outside code blocks) that mkdocs and GitHub both give alike."""
    found, fence = set(), False
    for line in page.read_text().splitlines():
        fence ^= line.lstrip().startswith("```")
        if not fence and re.match(r"#{1,6} ", line):
            text = line.lstrip("#")
            if slugify(text.strip(), "-") == github_slug(text):
                found.add(github_slug(text))
    return found


def test_a_heading_with_folded_punctuation_has_no_common_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Options (`up -- --s3`)\n## CI contexts\n```\n# not a heading\n```\n")
    assert headings(page) == {"ci-contexts"}


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_anchor_resolves_alike_on_github_and_in_mkdocs(page):
    """The README is read on GitHub, the pages on GitHub and in the site: each link must work on both."""
    links = [t for t in LINK.findall(page.read_text()) if "://" not in t]
    for target in links:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.is_file(), f"{page.relative_to(ROOT)}: link to {path}: no such file"
        if anchor:
            assert anchor in headings(file), f"{page.relative_to(ROOT)}: link to {target}: no heading has that anchor"


def test_the_readme_links_every_docs_page():
    linked = {t.partition("#")[0] for t in LINK.findall((ROOT / "README.md").read_text())}
    pages = {str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")}
    assert not pages - linked, f"README.md links no {sorted(pages - linked)}"


def mermaid(page: str) -> list[str]:
    """The lines of the page's one Mermaid block."""
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"docs/{page}: {len(blocks)} Mermaid blocks"
    return [line.strip() for line in blocks[0].splitlines() if line.strip()]


NODE = re.compile(r'^(\w+)(\["|\{\{")(.*?)("\]|"\}\})$')


def test_the_layer_diagram_draws_exactly_the_structure_tests_rules():
    from tests.unit.test_structure import LAYERS

    drawn = set()
    for line in mermaid("architecture.md"):
        if "--x" in line:
            below, above = line.split("--x")
            drawn |= {(f"airstack.{below.strip()}", f"airstack.{a.strip()}") for a in above.split("&")}
    assert drawn == {(low, high) for low, highs in LAYERS.items() for high in highs}


def test_the_ci_diagram_is_the_circleci_workflows():
    from tests.unit import test_circleci as circleci

    flows, nodes, edges, current = {}, {}, set(), None
    for line in mermaid("ci.md"):
        if line.startswith("subgraph "):
            current = re.match(r"subgraph (\w+)", line).group(1).replace("_", "-")
            flows[current] = set()
        elif NODE.match(line):
            node, shape, label, _ = NODE.match(line).groups()
            job = re.match(r"[a-z-]+", label).group(0)
            nodes[node] = (job, shape == '{{"', label)
            flows[current].add(job)
        elif "-->" in line:
            chain = [n.strip() for n in line.split("-->")]
            edges |= {(nodes[a][0], nodes[b][0], current) for a, b in zip(chain, chain[1:])}
    assert set(flows) == set(circleci.config()["workflows"])
    for flow in flows:
        jobs = circleci.workflow(flow)
        assert flows[flow] == set(jobs), flow
        required = {(r, j) for j, o in jobs.items() for r in o.get("requires", [])}
        assert {(a, b) for a, b, f in edges if f == flow} == required, flow
    for job, approval, label in nodes.values():
        flow = next(f for f, jobs in flows.items() if job in jobs)
        assert approval == circleci.is_approval(job, flow), job
        for session, args in ([] if approval else circleci.nox_calls(job, circleci.MAIN)):
            assert " -- ".join(filter(None, [f"nox -s {session}", " ".join(args)])) in label, (job, session, args)


def test_a_change_to_the_docs_runs_the_tests_that_read_them():
    """On a branch (`test-platform -- --changed-since`), a docs-only change still runs the docs' tests."""
    from airstack.gate.affected import compute, read_sources
    from airstack.gate.testrun import tooling_changed

    changed = ["docs/ci.md", "docs/images.md", "mkdocs.yml", "README.md"]
    assert tooling_changed([*changed, "dags/etl_postgres.py"]) == changed
    assert {"tests/unit/test_docs.py", "tests/unit/test_circleci_contexts.py", "tests/unit/test_external_images.py",
            "tests/unit/test_bench_registry.py"} <= compute(changed, read_sources(paths.repo_root())).test_files
