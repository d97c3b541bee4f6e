"""airstack/gate/security_scan.py's pure parts: checkov's report read, waivers loaded and judged, docs/security.md's
table."""

from __future__ import annotations

import json

import pytest

from airstack import paths
from airstack.errors import ConfigError
from airstack.gate import security_scan
from airstack.gate.security_scan import Finding, Waiver

AFFECTED_BY = ("security/", "infra/cloudformation/", "images/", "docs/security.md")

POD = "Deployment.airflow.airflow-scheduler"


def finding(check: str = "CKV_K8S_11", resource: str = POD, reason: str = "") -> Finding:
    return Finding("kubernetes", check, resource, "prod.yaml", "CPU limits should be set", reason)


def test_an_unwaived_finding_is_a_problem():
    assert security_scan.judge([finding()], [], [], ("kubernetes",)) == [
        f"unwaived: prod.yaml: CKV_K8S_11 {POD}: CPU limits should be set"]


@pytest.mark.parametrize("resource", [POD, "*"])
def test_a_waiver_covers_its_check_on_its_resource(resource):
    waiver = Waiver("kubernetes", "CKV_K8S_11", resource, "requests only")
    assert security_scan.judge([finding()], [], [waiver], ("kubernetes",)) == []


@pytest.mark.parametrize("waiver", [Waiver("kubernetes", "CKV_K8S_11", "Deployment.airflow.other", "x"),
                                    Waiver("kubernetes", "CKV_K8S_12", POD, "x"),
                                    Waiver("cloudformation", "CKV_K8S_11", POD, "x")])
def test_a_waiver_of_another_check_resource_or_framework_does_not_cover(waiver):
    problems = security_scan.judge([finding()], [], [waiver], ("kubernetes", "cloudformation"))
    assert problems[0].startswith("unwaived: ") and problems[1].endswith("waives nothing (remove it)")


def test_a_waiver_that_waives_nothing_is_a_problem_only_in_its_frameworks_scan():
    stale = Waiver("kubernetes", "CKV_K8S_99", POD, "gone")
    assert security_scan.judge([], [], [stale], ("kubernetes",)) == [
        f"security/waivers.yaml: kubernetes CKV_K8S_99 {POD}: waives nothing (remove it)"]
    assert security_scan.judge([], [], [stale], ("cloudformation", "dockerfile")) == []


@pytest.mark.parametrize("reason", ["", "No comment provided"])
def test_an_inline_skip_without_a_reason_is_a_problem(reason):
    (problem,) = security_scan.judge([], [finding(reason=reason)], [], ("kubernetes",))
    assert problem.startswith("inline skip without a reason: ")
    assert security_scan.judge([], [finding(reason="the base is an argument")], [], ("kubernetes",)) == []


@pytest.mark.parametrize(("text", "message"), [
    ("kubernetes:\n  - {check: CKV_K8S_11, resource: '*'}\n", r"kubernetes\[0\]: reason missing"),
    ("kubernetes:\n  - {check: CKV_K8S_11, resource: '*', reason: '  '}\n", r"kubernetes\[0\]: reason missing"),
    ("kubernetes:\n  - {reason: why}\n", r"kubernetes\[0\]: check, resource missing"),
    ("helm:\n  - {check: C, resource: r, reason: why}\n", r"helm: not a scanned framework"),
    ("kubernetes:\n  - CKV_K8S_11\n", r"kubernetes\[0\]: expected check, resource and reason"),
    ("- a\n", "expected a mapping"),
])
def test_a_bad_waivers_file_names_file_and_entry(tmp_path, text, message):
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{path}: .*{message}"):
        security_scan.load_waivers(path)


def test_checkov_reports_are_read_whether_one_a_list_or_one_per_folder():
    def report(framework: str, check: str) -> dict:
        return {"check_type": framework, "results": {
            "failed_checks": [{"check_id": check, "resource": "R", "file_path": "/t.yaml", "check_name": "n"}],
            "skipped_checks": [{"check_id": "CKV_X", "resource": "S", "file_path": "/t.yaml", "check_name": "m",
                                "check_result": {"result": "SKIPPED", "suppress_comment": "because"}}]}}

    text = json.dumps([report("cloudformation", "CKV_A")]) + "\n" + json.dumps(report("dockerfile", "CKV_B"))
    failed, skipped = security_scan.findings(security_scan.reports(text))
    assert [(f.framework, f.check, f.file) for f in failed] == [("cloudformation", "CKV_A", "t.yaml"),
                                                                ("dockerfile", "CKV_B", "t.yaml")]
    assert {(s.check, s.reason) for s in skipped} == {("CKV_X", "because")}
    assert security_scan.reports("") == []


def test_the_readme_lists_every_waiver_with_its_reason():
    """docs/security.md's table is `python -m airstack.gate.security_scan table`: the waivers cannot drift from it."""
    root = paths.repo_root()
    assert security_scan.table(root) in (root / "docs" / "security.md").read_text()
    assert len(security_scan.inline_waivers(root)) >= 1 and security_scan.load_waivers(root / security_scan.WAIVERS)
