"""`.circleci/config.yml`'s secrets: none in the file, each from a context (production's only after approval),
every variable the deploy jobs read listed in docs/ci.md's contexts table, and no AWS key stored.
"""

from __future__ import annotations

import ast
import re

from tests.unit.test_circleci import (BRANCH, MAIN, CONFIG, ROOT, SECRET_LITERALS, SECRET_SESSIONS, SECRET_VARIABLES,
                                      chain, command, config, is_approval, job_steps, nox_calls, runs_on, workflow)

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = (".circleci/", "airstack/deploy/", "airstack/git_auth.py", "docs/ci.md")


def test_no_secret_in_the_file():
    text = CONFIG.read_text()
    for pattern in SECRET_LITERALS:
        assert not re.search(pattern, text, re.IGNORECASE), f"{pattern} in {CONFIG.name}: secrets go in contexts"

    def environments(node):
        if isinstance(node, dict):
            if isinstance(node.get("environment"), dict):
                yield node["environment"]
            for value in node.values():
                yield from environments(value)
        elif isinstance(node, list):
            for value in node:
                yield from environments(value)

    for env in environments(config()):
        assert not SECRET_VARIABLES & set(env), f"{sorted(SECRET_VARIABLES & set(env))} set in the file"


def _needs_secrets(job: str) -> bool:
    for branch in (MAIN, BRANCH):
        if any(session in SECRET_SESSIONS for session, _ in nox_calls(job, branch)):
            return True
        if any(kind == "run" and "$KUBECONFIG_DATA" in command(v) for kind, v in job_steps(job, branch)):
            return True
    return False


def test_secrets_come_from_contexts_production_only_after_approval():
    order = chain()
    for name, opts in workflow().items():
        if is_approval(name):
            continue
        contexts = opts.get("context", [])
        contexts = [contexts] if isinstance(contexts, str) else contexts
        if not _needs_secrets(name):
            assert not contexts, f"{name} needs no secrets: no context (branch code there never sees them)"
            continue
        assert len(contexts) == 1, f"{name} needs secrets: one context, not {contexts}"
        production = "production" in contexts[0]
        assert production == (name == "deploy-production"), f"{name}: context {contexts[0]}"
        if production:
            assert is_approval(order[order.index(name) - 1]) and not runs_on(opts, BRANCH)


# ------------------------------------------------------------------------- the contexts' variables --
# Read by other programs the deploy jobs run, not by this repository's code: sops, the AWS SDKs and CLI.
TOOL_VARIABLES = {"SOPS_AGE_KEY": "sops (integration's age identity)", "AWS_ROLE_ARN": "the AWS SDKs (web identity)",
                  "AWS_REGION": "the AWS SDKs, sops, the ECR credential helper"}


# Set by the job itself, or by CircleCI for the shell; not a context's.
JOB_VARIABLES = {"BASH_ENV", "AWS_WEB_IDENTITY_TOKEN_FILE", "HOME"}


def deploy_jobs() -> list[str]:
    return [job for job in config()["jobs"] if _needs_secrets(job)]


def config_variables() -> set[str]:
    """The variables the deploy jobs' steps read (``$NAME``, ``${NAME}``), for main and for a branch."""
    found = set()
    for job in deploy_jobs():
        for branch in (MAIN, BRANCH):
            for kind, value in job_steps(job, branch):
                if kind == "run":
                    found |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", command(value)))
    return found - JOB_VARIABLES


def code_variables() -> set[str]:
    """The variables the deploy's code reads: each module-level ``*_ENV = "NAME"`` of airstack/deploy/** and of
    the git credential helper (airstack/git_auth.py)."""
    files = [*sorted((ROOT / "airstack" / "deploy").rglob("*.py")), ROOT / "airstack" / "git_auth.py"]
    found = set()
    for path in files:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                    isinstance(node.value.value, str) and any(isinstance(t, ast.Name) and t.id.endswith("_ENV")
                                                              for t in node.targets):
                found.add(node.value.value)
    return found


def readme_contexts() -> dict[str, list[str]]:
    """docs/ci.md's "CI contexts" table: variable -> its cells."""
    text = (ROOT / "docs" / "ci.md").read_text()
    section = text[text.index("## CI contexts"):]
    section = section[:section.index("\n#", 1)] if "\n#" in section[1:] else section
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `")]
    return {row[0].strip("`"): row[1:] for row in rows}


def test_every_variable_the_deploy_jobs_read_is_in_the_readmes_context_table():
    listed = readme_contexts()
    assert {"AIRSTACK_CFN_ROLE_ARN", "AIRSTACK_GIT_TOKEN"} <= code_variables(), code_variables()
    assert {"KUBECONFIG_DATA", "CIRCLE_OIDC_TOKEN_V2", "AWS_PREVIEW_ROLE_ARN"} <= config_variables()
    wanted = config_variables() | code_variables() | set(TOOL_VARIABLES)
    assert not wanted - set(listed), f"docs/ci.md's CI contexts table lacks {sorted(wanted - set(listed))}"
    assert not set(listed) - wanted, f"docs/ci.md lists variables nothing reads: {sorted(set(listed) - wanted)}"


def test_deploy_jobs_assume_their_contexts_role_and_store_no_aws_key():
    listed = readme_contexts()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name not in listed, f"{name}: the jobs assume a role with their OIDC token, no key is stored"
    aws_jobs = deploy_jobs()
    assert aws_jobs
    for job in aws_jobs:
        for branch in (MAIN, BRANCH):
            commands = [command(v) for kind, v in job_steps(job, branch) if kind == "run"]
            assert any("CIRCLE_OIDC_TOKEN_V2" in c and "/dev/shm/" in c for c in commands), \
                f"job {job} ({branch}): no web identity from the OIDC token"
            preview = any("AWS_PREVIEW_ROLE_ARN" in c for c in commands)
            assert preview == (branch != MAIN), f"job {job} on {branch}: the preview role on branches only"
    assert listed["SOPS_AGE_KEY"][1] == "-", "production decrypts with KMS through its role: no age key in CI"
