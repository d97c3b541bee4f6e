# /// script
# dependencies = ["nox>=2025.2.9", "uv"]
# ///
"""Every job in this repository is a nox session: `nox -l` lists them, `nox -s NAME` runs one.

Sessions stay thin: they install from the project's locks and call into `airstack/`.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "test"]

PYTHON = "3.11"
DEV_LOCK = "requirements/dev.txt"
LINT_PATHS = ["dags", "plugins", "airstack", "tests", "noxfile.py"]
# PYTHONDONTWRITEBYTECODE may be set; compiled site-packages halve Airflow's start-up time.
INSTALL_ENV = {"UV_COMPILE_BYTECODE": "1"}


SHARED_ENV = Path(".nox") / "_airflow"


def install_dev(session: nox.Session) -> None:
    """Airflow from the runtime lock, the test tools pinned with it, and this package."""
    session.install("-r", DEV_LOCK, "-e", ".", env=INSTALL_ENV)


def shared_python(session: nox.Session) -> str:
    """One environment for every operational session (up, down, settings-*, images...): Airflow installs once."""
    python, stamp = SHARED_ENV / "bin" / "python", SHARED_ENV / ".installed"
    wanted = hashlib.sha256(Path(DEV_LOCK).read_bytes() + Path("pyproject.toml").read_bytes()).hexdigest()
    uv = [sys.executable, "-m", "uv"]
    if not python.exists():
        session.run(*uv, "venv", "--quiet", "--python", PYTHON, str(SHARED_ENV), external=True)
    if not (stamp.is_file() and stamp.read_text() == wanted):  # new, or the lock/pyproject changed
        session.run(*uv, "pip", "install", "--quiet", "--python", str(python), "-r", DEV_LOCK, "-e", ".",
                    env=INSTALL_ENV, external=True)
        stamp.write_text(wanted)
    return str(python)


def airstack(session: nox.Session, module: str, *args: str) -> None:
    """Run `python -m airstack.MODULE ARGS... POSARGS...` in the shared environment."""
    session.run(shared_python(session), "-m", f"airstack.{module}", *args, *session.posargs, external=True)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint Python (flake8, seed 000's settings), check every YAML file parses and every image pins its packages."""
    session.install("-c", DEV_LOCK, "flake8", "yamllint", "-e", ".", env=INSTALL_ENV)
    session.run("flake8", *LINT_PATHS)
    session.run("yamllint", "--strict", "-c", ".yamllint.yaml", ".")
    session.run("python", "-m", "airstack.images", "lint")


@nox.session(python=PYTHON, requires=["lint"])
def test(session: nox.Session) -> None:
    """Lint, then run every test: units, DAG integrity and DAG runs on Postgres, providers, Docker."""
    install_dev(session)
    session.run("pytest", "--numprocesses=auto", "--dist=loadgroup", *session.posargs)


@nox.session(name="check-dags", python=False, default=False)
def check_dags(session: nox.Session) -> None:
    """Parse every DAG with Airflow and apply the DAG policy; prints a table of files and findings."""
    airstack(session, "dagcheck")


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run benchmarks (`-- test-suite`, `dag-integrity-scale`, `settings-import`; none: all) into benchmarks/."""
    install_dev(session)
    session.run("python", "-m", "airstack.bench", *session.posargs)


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


@nox.session(name="test-e2e", python=PYTHON, default=False)
def test_e2e(session: nox.Session) -> None:
    """End-to-end tests of the local environment: up, health, settings, a DAG run, down, up, clean."""
    install_dev(session)
    session.run("pytest", "-p", "no:xdist", "tests/e2e", *session.posargs, env={"AIRSTACK_E2E": "1"})


@nox.session(python=PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Recompile requirements/runtime.txt and dev.txt (universal, hashed) after editing the .in files."""
    session.install("uv")
    for name in ("runtime", "dev"):
        session.run("uv", "pip", "compile", "--quiet", "--universal", "--python-version", PYTHON,
                    "--generate-hashes", "--custom-compile-command", "nox -s lock", *session.posargs,
                    f"requirements/{name}.in", "-o", f"requirements/{name}.txt")
