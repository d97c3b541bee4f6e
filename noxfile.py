# /// script
# dependencies = ["nox>=2025.2.9", "uv"]
# ///
"""Every job in this repository is a nox session: `nox -l` lists them, `nox -s NAME` runs one.

Sessions stay thin: they install from the project's locks and call into `airstack/`.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True
nox.options.sessions = ["test"]  # the gate (it lints too)

PYTHON = "3.11"
DEV_LOCK = "requirements/dev.txt"
# Airflow's python-dateutil pin wins over botocore's `<3` (see the file): installs of the dev lock here;
# the compiles (`nox -s lock`, `nox -s upgrade`) take it from airstack/upgrade/locks.py.
OVERRIDES = ("--override", "requirements/overrides.txt")
# PYTHONDONTWRITEBYTECODE may be set; compiled site-packages halve Airflow's start-up time.
INSTALL_ENV = {"UV_COMPILE_BYTECODE": "1"}


SHARED_ENV = Path(".nox") / "_airflow"


def shared_python(session: nox.Session) -> str:
    """One environment for the tests, the deploys and the operational sessions (up, settings-*, images...)."""
    python, stamp = SHARED_ENV / "bin" / "python", SHARED_ENV / ".installed"
    inputs = (DEV_LOCK, "pyproject.toml", OVERRIDES[1])
    wanted = hashlib.sha256(b"".join(Path(f).read_bytes() for f in inputs)).hexdigest()
    uv = [sys.executable, "-m", "uv"]
    if not python.exists():
        session.run(*uv, "venv", "--quiet", "--python", PYTHON, str(SHARED_ENV), external=True)
    if not (stamp.is_file() and stamp.read_text() == wanted):  # new, or the lock/pyproject changed
        session.run(*uv, "pip", "install", "--quiet", "--python", str(python), "-r", DEV_LOCK, *OVERRIDES,
                    "-e", ".", env=INSTALL_ENV, external=True)
        stamp.write_text(wanted)
    return str(python)


CHECKOV_LOCK, CHECKOV_ENV = "requirements/checkov.txt", Path(".nox") / "_checkov"


def checkov_env(session: nox.Session) -> None:
    """checkov in its own environment (its pins conflict with Airflow's): airstack/gate/security_scan.py runs it."""
    stamp, wanted = CHECKOV_ENV / ".installed", hashlib.sha256(Path(CHECKOV_LOCK).read_bytes()).hexdigest()
    if not (stamp.is_file() and stamp.read_text() == wanted):
        uv = [sys.executable, "-m", "uv"]
        session.run(*uv, "venv", "--quiet", "--python", PYTHON, str(CHECKOV_ENV), external=True)
        session.run(*uv, "pip", "install", "--quiet", "--python", str(CHECKOV_ENV / "bin" / "python"),
                    "-r", CHECKOV_LOCK, env=INSTALL_ENV, external=True)
        stamp.write_text(wanted)


def airstack(session: nox.Session, module: str, *args: str) -> None:
    """Run `python -m airstack.MODULE ARGS... POSARGS...` in the shared environment."""
    session.run(shared_python(session), "-m", f"airstack.{module}", *args, *session.posargs, external=True)


def deploy(session: nox.Session, *args: str) -> None:
    """Run `python -m airstack.deploy ARGS... POSARGS...` in the shared environment (`--dags`: DAG checks first)."""
    session.run(shared_python(session), "-m", "airstack.deploy", *args, *session.posargs, external=True)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """flake8 (seed 000), ruff's AIR3 rules, yamllint, image pins, cfn-lint, checkov (`-- --changed-since REF`)."""
    checkov_env(session)
    airstack(session, "gate.lint")


@nox.session(python=False)
def test(session: nox.Session) -> None:
    """The team's gate: lint, DAG integrity/policy/templates, every DAG run on Postgres, settings, charts."""
    checkov_env(session)
    session.run(shared_python(session), "-m", "airstack.gate.testrun", "gate", *session.posargs, external=True)


@nox.session(name="test-platform", python=False, default=False)
def test_platform(session: nox.Session) -> None:
    """The tooling's own tests: tests/unit, integration, docker, dags/checker, deploy (`--changed-since REF`)."""
    session.run(shared_python(session), "-m", "airstack.gate.testrun", "platform", *session.posargs, external=True)


@nox.session(name="check-dags", python=False, default=False)
def check_dags(session: nox.Session) -> None:
    """Parse every DAG with Airflow and apply the DAG policy; prints a table of files and findings."""
    airstack(session, "dagtools.check")


@nox.session(name="dag-diff", python=False, default=False)
def dag_diff(session: nox.Session) -> None:
    """What a change does to the DAGs, as Markdown for a PR (`-- [REF] [--json] [--output FILE]`; REF: merge base)."""
    airstack(session, "dagtools.diff")


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """Run benchmarks (`-- test-suite`, `test-cold`, `up-native`...; none: all) into benchmarks/."""
    session.run(shared_python(session), "-m", "airstack.bench", *session.posargs, external=True)


def images(session: nox.Session, verb: str) -> None:
    """Run `python -m airstack.images VERB` with the session's arguments."""
    airstack(session, "images", verb)


@nox.session(name="build-images", python=False, default=False)
def build_images(session: nox.Session) -> None:
    """Build every image under images/ whose content tag does not exist yet (`-- NAME ...` for some)."""
    images(session, "build")


@nox.session(name="push-images", python=False, default=False)
def push_images(session: nox.Session) -> None:
    """Build if needed and push images to an environment's registry: `nox -s push-images -- --env ENV`."""
    images(session, "push")


@nox.session(name="images", python=False, default=False)
def images_table(session: nox.Session) -> None:
    """Show every image: name, flavour, content tag, built locally, pushed (`-- --env ENV`), size."""
    images(session, "list")


def settings(session: nox.Session, verb: str) -> None:
    """Run `python -m airstack.settings VERB` with the session's arguments (ENV first)."""
    airstack(session, "settings", verb)


@nox.session(name="settings-edit", python=False, default=False)
def settings_edit(session: nox.Session) -> None:
    """Edit settings/ENV/secret.yaml in sops' editor, then validate it: `nox -s settings-edit -- local`."""
    settings(session, "edit")


@nox.session(name="settings-check", python=False, default=False)
def settings_check(session: nox.Session) -> None:
    """Validate every environment whose key is here, and check that DAGs' connections/variables exist in all."""
    settings(session, "check")


@nox.session(name="settings-diff", python=False, default=False)
def settings_diff(session: nox.Session) -> None:
    """Show what settings-apply would change, values redacted (`-- ENV [--against URL] [--prune]`)."""
    settings(session, "diff")


@nox.session(name="settings-apply", python=False, default=False)
def settings_apply(session: nox.Session) -> None:
    """Import settings/ENV into the Airflow DB in one transaction (`-- ENV [--prune] [--dry-run]`)."""
    settings(session, "apply")


@nox.session(name="settings-keys", python=False, default=False)
def settings_keys(session: nox.Session) -> None:
    """Generate missing Fernet/API/JWT keys (`-- ENV`), or rotate the Fernet key (`--rotate-fernet`)."""
    settings(session, "keys")


@nox.session(name="settings-render", python=False, default=False)
def settings_render(session: nox.Session) -> None:
    """Print Kubernetes Secrets for the official chart to stdout (`-- ENV [--values]`); never to a file."""
    settings(session, "render")


@nox.session(name="settings-init", python=False, default=False)
def settings_init(session: nox.Session) -> None:
    """Create settings/ENV with a new age key and its .sops.yaml rule (`-- ENV`)."""
    settings(session, "init")


@nox.session(python=False, default=False)
def up(session: nox.Session) -> None:
    """Start Airflow locally with the repo's DAGs and settings/local; wait until healthy (`-- --runtime native`)."""
    airstack(session, "localenv", "up")


@nox.session(python=False, default=False)
def down(session: nox.Session) -> None:
    """Stop the local environment; its data is kept."""
    airstack(session, "localenv", "down")


@nox.session(python=False, default=False)
def restart(session: nox.Session) -> None:
    """Stop and start the local environment."""
    airstack(session, "localenv", "restart")


@nox.session(python=False, default=False)
def status(session: nox.Session) -> None:
    """Show the local environment's services, their health and ports."""
    airstack(session, "localenv", "status")


@nox.session(python=False, default=False)
def logs(session: nox.Session) -> None:
    """Show the last lines of the local services' logs (`-- SERVICE` for one)."""
    airstack(session, "localenv", "logs")


@nox.session(python=False, default=False)
def shell(session: nox.Session) -> None:
    """Open a shell with the Airflow CLI configured for the local environment."""
    airstack(session, "localenv", "shell")


@nox.session(python=False, default=False)
def clean(session: nox.Session) -> None:
    """Remove the local environment and its data (asks first; `-- --yes` does not)."""
    airstack(session, "localenv", "clean")


@nox.session(python=False, default=False)
def run(session: nox.Session) -> None:
    """Trigger a DAG run locally and follow it to its end: `nox -s run -- DAG_ID` (exit code from the result)."""
    airstack(session, "localenv", "run")


@nox.session(name="deploy-plan", python=False, default=False)
def deploy_plan(session: nox.Session) -> None:
    """Show what a deploy would change, changing nothing: `nox -s deploy-plan -- ENV [--only helm|cloudformation]`."""
    deploy(session, "plan")


@nox.session(name="deploy-integration", python=False, default=False)
def deploy_integration(session: nox.Session) -> None:
    """Push changed images, deploy integration's stacks and charts (`-- --preview|--dags|--dry-run|--yes|--only`)."""
    deploy(session, "deploy", "integration")


@nox.session(name="deploy-production", python=False, default=False)
def deploy_production(session: nox.Session) -> None:
    """Deploy production behind its guards: clean tree on main or a tag, images pushed (`--dry-run`, `--yes`)."""
    deploy(session, "deploy", "production")


@nox.session(python=False, default=False)
def destroy(session: nox.Session) -> None:
    """Remove integration, a preview (`-- integration --preview BRANCH`) or stale previews (`--merged`)."""
    deploy(session, "destroy")


def ci_constant(name: str):
    """A constant of airstack/ci.py (read, not imported: the package is not installed where nox runs)."""
    tree = ast.parse(Path("airstack/ci.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == name)
    return ast.literal_eval(node.value)


@nox.session(python=False, default=False)
def ci(session: nox.Session) -> None:
    """CircleCI's pipeline, then its DAG-only deploys, locally; the deploys as `--dry-run` against local stand-ins."""
    local, pipeline = ci_constant("LOCAL_EXTRA_ARGS"), ci_constant("PIPELINE")
    for name, args in (*pipeline, *(step for step in ci_constant("DAGS_PIPELINE") if step not in pipeline)):
        if name.startswith("deploy-"):  # moto for AWS, a helm stand-in, throwaway keys (airstack/deploy/replay.py)
            session.run(shared_python(session), "-m", "airstack.deploy.replay", name.removeprefix("deploy-"),
                        *args, external=True)
        else:
            session.run(sys.executable, "-m", "nox", "-s", name, "--", *args, *local.get(name, ()), external=True)


@nox.session(name="test-e2e", python=False, default=False)
def test_e2e(session: nox.Session) -> None:
    """End-to-end tests of the local environment: up, health, settings, a DAG run, down, up, clean."""
    session.run(shared_python(session), "-m", "pytest", "-p", "no:xdist", "tests/e2e", *session.posargs,
                env={"AIRSTACK_E2E": "1"}, external=True)


def uv_bin() -> str:
    """The uv that nox itself runs with (this file's PEP 723 dependency)."""
    from uv import find_uv_bin

    return find_uv_bin()


@nox.session(python=False, default=False)
def docs(session: nox.Session) -> None:
    """Build docs/ (mkdocs.yml) into .airstack/site; --strict: a broken link or anchor fails the build."""
    session.run(shared_python(session), "-m", "mkdocs", "build", "--strict", *session.posargs, external=True)


@nox.session(python=False, default=False)
def lock(session: nox.Session) -> None:
    """Recompile requirements/runtime.txt and dev.txt (universal, hashed) after editing the .in files."""
    airstack(session, "upgrade.locks", "--uv", uv_bin())


@nox.session(python=False, default=False)
def upgrade(session: nox.Session) -> None:
    """Rehearse an upgrade in a scratch venv (`-- 3.3.1`, `--provider NAME==V`, `--chart V`, `--db-rows N`, ...)."""
    airstack(session, "upgrade", "--uv", uv_bin())
