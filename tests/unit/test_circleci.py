"""`.circleci/config.yml` only calls nox, in airstack/ci.py's PIPELINE order, with secrets from contexts.

CircleCI cannot run here, so these tests read the file as CircleCI would: reusable commands
expanded, `when`/`unless` evaluated for a branch (`<< pipeline.git.branch >>`), branch filters
applied, and the workflow ordered by `requires`.
"""

from __future__ import annotations

import ast
import re
import shlex
from functools import cache

import yaml

from airstack import ci, paths

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = (".circleci/",)  # the contexts' variables (the deploy code, README): test_circleci_contexts.py

ROOT = paths.repo_root()
CONFIG = ROOT / ".circleci" / "config.yml"
MAIN, BRANCH = "main", "feature/some-change"

# Steps that are not `nox -s ...`: getting the commit, caches, nox itself, Docker, credential
# files written from context variables, and keeping results. Nothing else does work in a job.
SETUP_STEPS = {"checkout", "restore_cache", "save_cache", "setup_remote_docker", "store_artifacts",
               "store_test_results", "persist_to_workspace", "attach_workspace"}
SETUP_COMMANDS = {
    'pip install "nox[uv]"',  # nox itself; everything else comes from the locks through nox
    'umask 077 && mkdir -p ~/.kube && echo "$KUBECONFIG_DATA" | base64 -d > ~/.kube/config',
    "mkdir -p ~/.docker && echo '{\"credsStore\": \"ecr-login\"}' > ~/.docker/config.json",
    # AWS through the context's role and the job's OIDC token (memory-backed /dev/shm), a branch's role on branches
    "umask 077 && printf '%s' \"$CIRCLE_OIDC_TOKEN_V2\" > /dev/shm/aws-web-identity && "
    "echo 'export AWS_WEB_IDENTITY_TOKEN_FILE=/dev/shm/aws-web-identity' >> \"$BASH_ENV\"",
    "echo 'export AWS_ROLE_ARN=\"$AWS_PREVIEW_ROLE_ARN\"' >> \"$BASH_ENV\"",
}
# Sessions that need credentials (a registry, AWS, a cluster, an environment's age key).
SECRET_SESSIONS = {"push-images", "deploy-plan", "deploy-integration", "deploy-production", "destroy"}
SECRET_VARIABLES = {"SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                    "AWS_SESSION_TOKEN", "KUBECONFIG_DATA", "AIRSTACK_GIT_TOKEN", "CIRCLE_OIDC_TOKEN_V2"}
SECRET_LITERALS = [r"\bA[KS]IA[0-9A-Z]{16}\b", r"AGE-SECRET-KEY-", r"-----BEGIN", r"client-key-data",
                   r"aws_secret_access_key\s*[:=]"]
DOCKER_SESSIONS = {"build-images", "push-images", "deploy-integration", "deploy-production"}
SCHEDULE_FILE = ROOT / ".circleci" / "schedules" / "previews-cleanup.json"


@cache
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


@cache
def noxfile() -> ast.Module:
    return ast.parse((ROOT / "noxfile.py").read_text())


@cache
def sessions() -> frozenset[str]:
    """Session names as nox gives them: `@nox.session(name=...)`, else the function's name unchanged."""
    names = set()
    for node in noxfile().body:
        for deco in getattr(node, "decorator_list", []):
            call = deco if isinstance(deco, ast.Call) else None
            if ast.unparse(call.func if call else deco) != "nox.session":
                continue
            given = [k.value.value for k in (call.keywords if call else []) if k.arg == "name"]
            names.add(given[0] if given else node.name)
    return frozenset(names)


def noxfile_python() -> str:
    (value,) = [n.value.value for n in noxfile().body if isinstance(n, ast.Assign)
                and [ast.unparse(t) for t in n.targets] == ["PYTHON"]]
    return value


# ------------------------------------------------------------------ reading the config --
PIPELINE_VALUE = re.compile(r"<<\s*(pipeline\.[\w.-]+)\s*>>")


def pipeline_values(branch: str, trigger: str = "webhook", schedule: str = "", dags_only: bool = False) -> dict:
    """The pipeline values a condition may read: a push (webhook) to ``branch``, an API trigger, or a schedule."""
    return {"pipeline.git.branch": branch, "pipeline.trigger_source": trigger, "pipeline.schedule.name": schedule,
            "pipeline.parameters.dags-only": dags_only}


def _value(text: str, values: dict):
    """A string with `<< pipeline.X >>` in it, as CircleCI gives it (a lone parameter keeps its type)."""
    def known(match: re.Match) -> object:
        assert match.group(1) in values, f"a pipeline value the tests cannot evaluate: {match.group(0)!r}"
        return values[match.group(1)]

    whole = PIPELINE_VALUE.fullmatch(text.strip())
    if whole:
        return known(whole)
    return PIPELINE_VALUE.sub(lambda m: str(known(m)), text)


def condition(value, branch) -> bool:
    """CircleCI's logic statements (equal, not, and, or, a value), for one branch (a push to it) or for
    :func:`pipeline_values`."""
    values = branch if isinstance(branch, dict) else pipeline_values(branch)
    if isinstance(value, str):
        return bool(_value(value, values))
    if not isinstance(value, dict):
        return bool(value)
    ((op, arg),) = value.items()
    if op == "equal":
        return len({str(_value(a, values)) if isinstance(a, str) else str(a) for a in arg}) == 1
    if op == "not":
        return not condition(arg, values)
    if op in ("and", "or"):
        return (all if op == "and" else any)(condition(a, values) for a in arg)
    raise AssertionError(f"a condition the tests cannot evaluate: {value!r}")


def workflows_run(values: dict) -> set[str]:
    """The workflows a pipeline with these values runs (each one's `when`/`unless`)."""
    flows = {name: flow for name, flow in config()["workflows"].items() if name != "version"}
    return {name for name, flow in flows.items()
            if condition(flow.get("when", True), values) and not condition(flow.get("unless", False), values)}


def steps(items: list, branch: str) -> list[tuple[str, object]]:
    """A job's steps as (kind, value) for a branch: commands expanded, when/unless applied."""
    out = []
    for item in items:
        kind, value = (item, None) if isinstance(item, str) else next(iter(item.items()))
        if kind in config().get("commands", {}):
            assert not value, f"command {kind}: parameters are not used in this config"
            out += steps(config()["commands"][kind]["steps"], branch)
        elif kind in ("when", "unless"):
            if condition(value["condition"], branch) == (kind == "when"):
                out += steps(value["steps"], branch)
        else:
            out.append((kind, value))
    return out


def job_steps(job: str, branch: str) -> list[tuple[str, object]]:
    return steps(config()["jobs"][job]["steps"], branch)


def command(value) -> str:
    return (value if isinstance(value, str) else value["command"]).strip()


def nox_call(cmd: str) -> tuple[str, tuple[str, ...]] | None:
    """`nox -s NAME [-- ARGS...]` as (NAME, ARGS); None for anything that is not a nox call."""
    if not cmd.startswith("nox"):
        return None
    words = shlex.split(cmd)
    shell = {"&&", "||", ";", "|", "&", ">", "<"}
    assert "\n" not in cmd and "$(" not in cmd and "`" not in cmd and not shell & set(words), \
        f"one nox call per step, nothing chained: {cmd!r}"
    assert words[:2] == ["nox", "-s"] and len(words) >= 3, f"not `nox -s SESSION`: {cmd!r}"
    rest = words[3:]
    assert not rest or rest[0] == "--", f"arguments go after `--`: {cmd!r}"
    return words[2], tuple(rest[1:])


def nox_calls(job: str, branch: str) -> list[tuple[str, tuple[str, ...]]]:
    calls = [nox_call(command(v)) for kind, v in job_steps(job, branch) if kind == "run"]
    return [c for c in calls if c]


SCHEDULED = "previews-cleanup"


def workflow(name: str = "pipeline") -> dict[str, dict]:
    flow = config()["workflows"][name]
    out = {}
    for item in flow["jobs"]:
        name, opts = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        out[name] = opts or {}
    return out


def _matches(pattern: str, branch: str) -> bool:
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        return re.fullmatch(pattern[1:-1], branch) is not None
    return pattern == branch


def runs_on(opts: dict, branch: str) -> bool:
    branches = opts.get("filters", {}).get("branches", {})
    only, ignore = branches.get("only"), branches.get("ignore")
    as_list = (lambda v: [v] if isinstance(v, str) else list(v or []))
    if only is not None and not any(_matches(p, branch) for p in as_list(only)):
        return False
    return not any(_matches(p, branch) for p in as_list(ignore))


def chain(name: str = "pipeline") -> list[str]:
    """The workflow's jobs in `requires` order; it must be one chain (each job waits for the previous)."""
    jobs = workflow(name)
    requires = {name: list(opts.get("requires", [])) for name, opts in jobs.items()}
    order = [name for name, req in requires.items() if not req]
    assert len(order) == 1, f"one first job, not {order}"
    while len(order) < len(jobs):
        nxt = [name for name, req in requires.items() if req == [order[-1]]]
        assert len(nxt) == 1, f"after {order[-1]}: {nxt or 'nothing'}; the workflow must be a chain: {requires}"
        order += nxt
    return order


def is_approval(name: str, flow: str = "pipeline") -> bool:
    return workflow(flow)[name].get("type") == "approval"


def executor(job: str) -> dict:
    spec = config()["jobs"][job]
    ref = spec.get("executor")
    if ref is None:
        return spec
    return config()["executors"][ref if isinstance(ref, str) else ref["name"]]


# -------------------------------------------------------------------------------- tests --
def test_config_is_circleci_2_1_with_one_workflow_of_known_jobs():
    data = config()
    assert str(data["version"]) == "2.1"
    assert set(data["workflows"]) - {"version"} == {"pipeline", "dags", SCHEDULED}
    assert not set(data) - {"version", "parameters", "executors", "commands", "jobs", "workflows"}, \
        "no orbs or other top-level keys: orb steps would do work outside nox"
    for flow in ("pipeline", "dags"):
        for name, opts in workflow(flow).items():
            assert is_approval(name, flow) or name in data["jobs"], f"workflow job {name} is not defined"
            for required in opts.get("requires", []):
                assert required in workflow(flow), f"{name} requires {required}, which is not in the workflow"


def test_every_nox_session_named_exists():
    assert {"lint", "test", "build-images", "deploy-integration", "deploy-production"} <= sessions()
    for job in config()["jobs"]:
        calls = nox_calls(job, MAIN) + nox_calls(job, BRANCH)
        assert calls, f"job {job} runs no nox session"
        for session, _ in calls:
            assert session in sessions(), f"job {job}: `nox -s {session}`: no such session in noxfile.py"


def test_no_step_does_work_outside_nox():
    for job in config()["jobs"]:
        for branch in (MAIN, BRANCH):
            for kind, value in job_steps(job, branch):
                if kind != "run":
                    assert kind in SETUP_STEPS, f"job {job}: step {kind} is neither nox nor setup"
                    continue
                cmd = command(value)
                assert nox_call(cmd) or cmd in SETUP_COMMANDS, f"job {job}: `{cmd}` is not `nox -s ...`"


def test_workflow_order_is_the_pipeline():
    order = [name for name in chain() if not is_approval(name)]
    assert order == [name for name, _ in ci.PIPELINE]


def test_main_runs_each_job_with_the_pipeline_arguments():
    for name, args in ci.PIPELINE:
        assert runs_on(workflow()[name], MAIN), f"{name} does not run on main"
        own = [call_args for session, call_args in nox_calls(name, MAIN) if session == name]
        assert own == [tuple(args)], f"job {name} on main runs `nox -s {name}` with {own}, PIPELINE says {args}"


def test_branches_deploy_a_preview_and_production_only_main_after_approval():
    on_branch = [name for name, opts in workflow().items() if runs_on(opts, BRANCH)]
    assert "deploy-production" not in on_branch, "deploy-production runs on branches: filter it to main"
    assert not [n for n in on_branch if is_approval(n)], "the approval hold runs on branches: filter it to main"
    deploys = [c for c in nox_calls("deploy-integration", BRANCH) if c[0] == "deploy-integration"]
    assert deploys == [("deploy-integration", ("--preview", "--yes"))], f"a branch deploys its preview: {deploys}"
    order = chain()
    gate = order.index("deploy-production") - 1
    assert is_approval(order[gate]) and runs_on(workflow()[order[gate]], MAIN)
    assert not runs_on(workflow()[order[gate]], BRANCH)


def test_dag_only_deploys_run_the_gate_then_move_only_the_dag_bundle():
    """The `dags` workflow (pipeline parameter dags-only) is DAGS_PIPELINE: on main only, the gate, then the
    DAG-only deploys, production's after an approval and with its own context; no image job in between."""
    assert config()["parameters"]["dags-only"] == {"type": "boolean", "default": False}
    assert workflows_run(pipeline_values(MAIN, "api", dags_only=True)) == {"dags"}
    assert workflows_run(pipeline_values(MAIN)) == {"pipeline"}
    assert workflows_run(pipeline_values(BRANCH)) == {"pipeline"}
    order = chain("dags")
    jobs = [name for name in order if not is_approval(name, "dags")]
    calls = [call for job in jobs for call in nox_calls(job, MAIN)]
    assert calls == [(name, tuple(args)) for name, args in ci.DAGS_PIPELINE]
    assert all(not runs_on(opts, BRANCH) for opts in workflow("dags").values()), "DAG-only deploys: main only"
    production = order.index("deploy-production-dags")
    assert is_approval(order[production - 1], "dags")
    assert workflow("dags")["deploy-production-dags"]["context"] == "airflow-production"
    assert workflow("dags")["deploy-integration-dags"]["context"] == "airflow-integration"


def test_caches_are_keyed_on_the_locks_and_noxfile():
    locks = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "requirements").glob("*.txt"))
    assert locks, "requirements/*.txt"
    for job in config()["jobs"]:
        found = dict(job_steps(job, MAIN))
        restore, save = found.get("restore_cache"), found.get("save_cache")
        assert restore and save, f"job {job} restores and saves the uv/nox cache"
        assert restore["keys"][0] == save["key"], f"job {job}: restore the key that is saved"
        for path in [*locks, "noxfile.py"]:
            assert f'{{{{ checksum "{path}" }}}}' in save["key"], f"job {job}: cache key lacks {path}'s checksum"
        assert {"~/.cache/uv", ".nox"} <= set(save["paths"])


def test_python_is_the_locks_python():
    python = noxfile_python()
    images = re.findall(r"cimg/python:([0-9.]+)", CONFIG.read_text())
    assert images and set(images) == {python}, f"cimg/python:{images} but the locks are Python {python}"
    for job in config()["jobs"]:
        spec = executor(job)
        image = (spec.get("docker") or [{}])[0].get("image", "")
        installs = spec.get("environment", {}).get("NOX_DOWNLOAD_PYTHON") == "always"
        assert image.startswith("cimg/python:") or installs, \
            f"job {job}: the lock's Python ({python}) is neither the image's nor installed by nox (NOX_DOWNLOAD_PYTHON)"


def test_docker_where_sessions_need_it():
    for job in config()["jobs"]:
        sessions_run = {s for branch in (MAIN, BRANCH) for s, _ in nox_calls(job, branch)}
        # A DAG-only deploy builds, pushes and tags nothing.
        docker_run = {s for branch in (MAIN, BRANCH) for s, args in nox_calls(job, branch) if "--dags" not in args}
        machine = "machine" in executor(job)
        if "test" in sessions_run:  # testcontainers reaches its containers on localhost ports
            assert machine, f"job {job} runs the tests: a machine executor (a local Docker daemon)"
        if docker_run & DOCKER_SESSIONS:
            remote = any(kind == "setup_remote_docker" for kind, _ in job_steps(job, MAIN))
            assert machine or remote, f"job {job} builds, pushes or tags images: it needs Docker"


def test_a_branch_reports_its_dag_diff_as_an_artifact():
    calls = nox_calls("test", BRANCH)
    assert ("dag-diff", ("--output", ".airstack/dag-diff/dag-diff.md")) in calls, calls
    artifacts = [v["path"] for kind, v in job_steps("test", BRANCH) if kind == "store_artifacts"]
    assert ".airstack/dag-diff" in artifacts
    assert "dag-diff" not in {session for session, _ in nox_calls("test", MAIN)}, "main has no merge base to diff"
