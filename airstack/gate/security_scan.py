"""``python -m airstack.gate.security_scan iac|kubernetes DIR``: checkov over what the project deploys, waivers applied.

checkov (requirements/checkov.in, locked in requirements/checkov.txt) runs offline (``--skip-download``: its
bundled policies, no platform API key) from its own environment (``.nox/_checkov``, which ``nox -s test`` and
``nox -s lint`` make from that lock): its pins (boto3, packaging, python-dateutil...) conflict with Airflow's, so
it cannot share the dev lock. ``AIRSTACK_CHECKOV`` names another ``checkov`` executable.

- ``iac``: the CloudFormation templates (``infra/cloudformation/``, the bootstrap stack too) and the images'
  Dockerfiles (``images/*/Dockerfile``); the lint lane runs it (airstack.lint).
- ``kubernetes DIR``: rendered manifests; tests/deploy/charts/test_chart_security.py renders both charts for every
  deployed environment, with the deploy's payload, and runs it in the charts lane.

A failed check fails unless it is waived, next to what it waives:

- inline: ``Metadata: {checkov: {skip: [{id: CKV_..., comment: REASON}]}}`` on a CloudFormation resource, or a
  ``# checkov:skip=CKV_...:REASON`` line in a Dockerfile;
- ``security/waivers.yaml``: ``{framework: [{check: CKV_..., resource: KIND.NAMESPACE.NAME, reason: ...}]}``
  (checkov's resource names; ``resource: "*"`` waives the check on every resource, which the reason must justify).

A waiver without a reason, and a file waiver that matched no failed check of its framework, fail too. The
judgement (:func:`judge`) is pure; docs/security.md's table is checked against the file
(tests/unit/test_security_scan.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from airstack import paths, proc
from airstack.errors import AirstackError, ConfigError

WAIVERS = "security/waivers.yaml"
FRAMEWORKS = ("cloudformation", "dockerfile", "kubernetes")
TEMPLATES = "infra/cloudformation"
CHECKOV_ENV = "AIRSTACK_CHECKOV"
TOOL_ENV = Path(".nox") / "_checkov"
# checkov's placeholder where an inline skip gives no reason.
NO_REASON = ("", "no comment provided")


@dataclass(frozen=True)
class Finding:
    framework: str
    check: str
    resource: str
    file: str
    name: str
    reason: str = ""  # an inline skip's comment

    def line(self) -> str:
        return f"{self.file}: {self.check} {self.resource}: {self.name}"


@dataclass(frozen=True)
class Waiver:
    framework: str
    check: str
    resource: str
    reason: str

    def waives(self, finding: Finding) -> bool:
        return (finding.framework == self.framework and finding.check == self.check
                and self.resource in ("*", finding.resource))


def load_waivers(path: Path) -> list[Waiver]:
    """The waivers file; a waiver with a missing field or no reason is a ConfigError naming it."""
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of framework to waivers")
    waivers = []
    for framework, entries in data.items():
        if framework not in FRAMEWORKS:
            raise ConfigError(f"{path}: {framework}: not a scanned framework ({', '.join(FRAMEWORKS)})")
        for i, entry in enumerate(entries or []):
            where = f"{path}: {framework}[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: expected check, resource and reason")
            missing = [k for k in ("check", "resource", "reason") if not str(entry.get(k) or "").strip()]
            if missing:
                raise ConfigError(f"{where}: {', '.join(missing)} missing (every waiver says why)")
            waivers.append(Waiver(framework, str(entry["check"]), str(entry["resource"]), str(entry["reason"]).strip()))
    return waivers


def findings(report: dict | list) -> tuple[list[Finding], list[Finding]]:
    """(failed, skipped inline) of checkov's JSON report (one framework's object or a list of them)."""
    failed, skipped = [], []
    for part in report if isinstance(report, list) else [report]:
        framework = part.get("check_type", "")
        results = part.get("results") or {}
        for kind, into in (("failed_checks", failed), ("skipped_checks", skipped)):
            for c in results.get(kind) or []:
                reason = ((c.get("check_result") or {}).get("suppress_comment") or "").strip()
                into.append(Finding(framework, c["check_id"], c["resource"], c.get("file_path", "").lstrip("/"),
                                    c.get("check_name", ""), reason))
    return failed, skipped


def judge(failed: list[Finding], skipped: list[Finding], waivers: list[Waiver],
          frameworks: tuple[str, ...]) -> list[str]:
    """One line per problem: a failed check no waiver covers, an inline skip without a reason, a file waiver
    (of the scanned frameworks) that matched no failed check (pure)."""
    problems = [f"unwaived: {f.line()}" for f in failed if not any(w.waives(f) for w in waivers)]
    problems += [f"inline skip without a reason: {f.line()}" for f in skipped if f.reason.lower() in NO_REASON]
    problems += [f"{WAIVERS}: {w.framework} {w.check} {w.resource}: waives nothing (remove it)"
                 for w in waivers if w.framework in frameworks and not any(w.waives(f) for f in failed)]
    return problems


def checkov_binary() -> str:
    given = os.environ.get(CHECKOV_ENV)
    if given:
        return given
    local = paths.repo_root() / TOOL_ENV / "bin" / "checkov"
    if not local.exists():
        raise AirstackError(f"checkov is not installed at {local}: `nox -s lint` or `nox -s test` makes it from "
                            f"requirements/checkov.txt (or set {CHECKOV_ENV})")
    return str(local)


def iac_targets(root: Path) -> list[str]:
    """checkov's arguments for the templates (the bootstrap stack too) and the Dockerfiles."""
    files = [*sorted(root.glob(f"{TEMPLATES}/*.yaml")), *sorted(root.glob(f"{TEMPLATES}/bootstrap/*.yaml")),
             *sorted(root.glob("images/*/Dockerfile"))]
    return ["--framework", "cloudformation", "dockerfile", "-f", *(str(f.relative_to(root)) for f in files)]


def scan(targets: list[str], cwd: Path) -> list:
    """checkov's JSON report over ``targets`` (offline: no download, no platform)."""
    argv = [checkov_binary(), "--skip-download", "--compact", "--output", "json", *targets]
    result = proc.run(argv, cwd=cwd, check=False, timeout=600, what="checkov")
    if result.returncode not in (0, 1):
        raise AirstackError(f"checkov failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    return reports(result.stdout)


def reports(stdout: str) -> list:
    """checkov's JSON output: one report, a list of them, or (several ``-d``) one document per folder (pure)."""
    decoder, text, at, parts = json.JSONDecoder(), stdout.strip(), 0, []
    while at < len(text):
        part, at = decoder.raw_decode(text, at)
        parts.extend(part if isinstance(part, list) else [part])
        while at < len(text) and text[at].isspace():
            at += 1
    return parts


def check(targets: list[str], frameworks: tuple[str, ...], root: Path) -> tuple[int, list[str]]:
    """(failed checks found, problems) of a scan of ``targets``, the waivers of ``frameworks`` applied."""
    started = time.perf_counter()
    failed, skipped = findings(scan(targets, root))
    problems = judge(failed, skipped, load_waivers(root / WAIVERS), frameworks)
    waived = len(failed) - sum(p.startswith("unwaived") for p in problems)
    print(f"checkov ({', '.join(frameworks)}): {len(failed)} failed check(s), {waived} waived in {WAIVERS}, "
          f"{len(skipped)} skipped inline; {time.perf_counter() - started:.1f} s")
    for line in problems:
        print(line)
    return len(failed), problems


def inline_waivers(root: Path) -> list[Waiver]:
    """The inline skips: CloudFormation resources' ``Metadata.checkov.skip`` and Dockerfiles' skip comments."""
    from cfnlint.decode import decode_str  # CloudFormation's short forms (!Ref...) need its loader

    found = []
    for path in [*sorted(root.glob(f"{TEMPLATES}/*.yaml")), *sorted(root.glob(f"{TEMPLATES}/bootstrap/*.yaml"))]:
        template, _ = decode_str(path.read_text())
        for name, resource in ((template or {}).get("Resources") or {}).items():
            for skip in (((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or []):
                found.append(Waiver("cloudformation", str(skip.get("id")), f"{path.relative_to(root)}: {name}",
                                    " ".join(str(skip.get("comment") or "").split())))
    for path in sorted(root.glob("images/*/Dockerfile")):
        for line in path.read_text().splitlines():
            if line.lstrip("# ").startswith("checkov:skip="):
                check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
                found.append(Waiver("dockerfile", check.strip(), str(path.relative_to(root)), reason.strip()))
    return found


def table(root: Path) -> str:
    """docs/security.md's table: every waiver, inline and in the file, with its reason (pure but for reading)."""
    rows = ["| framework | check | resource | why it is waived |", "| --- | --- | --- | --- |"]
    for w in [*inline_waivers(root), *load_waivers(root / WAIVERS)]:
        reason = " ".join(w.reason.split()).replace("|", "\\|")
        rows.append(f"| {w.framework} | {w.check} | `{w.resource}` | {reason} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m airstack.gate.security_scan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("iac", "kubernetes", "table"))
    parser.add_argument("dir", nargs="?", type=Path, help="kubernetes: the folder of rendered manifests")
    args = parser.parse_args(argv)
    root = paths.repo_root()
    if args.what == "table":  # docs/security.md's table
        print(table(root))
        return 0
    if args.what == "iac":
        _, problems = check(iac_targets(root), ("cloudformation", "dockerfile"), root)
    else:
        if args.dir is None or not args.dir.is_dir():
            raise ConfigError("kubernetes: name the folder of rendered manifests")
        _, problems = check(["--framework", "kubernetes", "-d", str(args.dir)], ("kubernetes",), root)
    return 1 if problems else 0


if __name__ == "__main__":
    from airstack.cli import run_main

    raise SystemExit(run_main(main))
