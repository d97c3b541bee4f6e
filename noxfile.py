# /// script
# dependencies = ["nox>=2025.2.9", "uv"]
# ///
"""Every job in this repository is a nox session: `nox -l` lists them, `nox -s NAME` runs one.

Sessions stay thin: they install from the project's locks and call into `airstack/`.
"""

from __future__ import annotations

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


def install_dev(session: nox.Session) -> None:
    """Airflow from the runtime lock, the test tools pinned with it, and this package."""
    session.install("-r", DEV_LOCK, "-e", ".", env=INSTALL_ENV)


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


@nox.session(name="check-dags", python=PYTHON, default=False)
def check_dags(session: nox.Session) -> None:
    """Parse every DAG with Airflow and apply the DAG policy; prints a table of files and findings."""
    install_dev(session)
    session.run("python", "-m", "airstack.dagcheck", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run benchmarks (`-- test-suite`, `dag-integrity-scale`, `settings-import`; none: all) into benchmarks/."""
    install_dev(session)
    session.run("python", "-m", "airstack.bench", *session.posargs)


def images(session: nox.Session, verb: str) -> None:
    """Run `python -m airstack.images VERB` with the session's arguments."""
    install_dev(session)
    session.run("python", "-m", "airstack.images", verb, *session.posargs)


@nox.session(name="build-images", python=PYTHON, default=False)
def build_images(session: nox.Session) -> None:
    """Build every image under images/ whose content tag does not exist yet (`-- NAME ...` for some)."""
    images(session, "build")


@nox.session(name="push-images", python=PYTHON, default=False)
def push_images(session: nox.Session) -> None:
    """Build if needed and push images to an environment's registry: `nox -s push-images -- --env ENV`."""
    images(session, "push")


@nox.session(name="images", python=PYTHON, default=False)
def images_table(session: nox.Session) -> None:
    """Show every image: name, flavour, content tag, built locally, pushed (`-- --env ENV`), size."""
    images(session, "list")


def settings(session: nox.Session, verb: str) -> None:
    """Run `python -m airstack.settings VERB` with the session's arguments (ENV first)."""
    install_dev(session)
    session.run("python", "-m", "airstack.settings", verb, *session.posargs)


@nox.session(name="settings-edit", python=PYTHON, default=False)
def settings_edit(session: nox.Session) -> None:
    """Edit settings/ENV/secret.yaml in sops' editor, then validate it: `nox -s settings-edit -- local`."""
    settings(session, "edit")


@nox.session(name="settings-check", python=PYTHON, default=False)
def settings_check(session: nox.Session) -> None:
    """Validate every environment whose key is here, and check that DAGs' connections/variables exist in all."""
    settings(session, "check")


@nox.session(name="settings-diff", python=PYTHON, default=False)
def settings_diff(session: nox.Session) -> None:
    """Show what settings-apply would change, values redacted (`-- ENV [--against URL] [--prune]`)."""
    settings(session, "diff")


@nox.session(name="settings-apply", python=PYTHON, default=False)
def settings_apply(session: nox.Session) -> None:
    """Import settings/ENV into the Airflow DB in one transaction (`-- ENV [--prune] [--dry-run]`)."""
    settings(session, "apply")


@nox.session(name="settings-keys", python=PYTHON, default=False)
def settings_keys(session: nox.Session) -> None:
    """Generate missing Fernet/API/JWT keys (`-- ENV`), or rotate the Fernet key (`--rotate-fernet`)."""
    settings(session, "keys")


@nox.session(name="settings-render", python=PYTHON, default=False)
def settings_render(session: nox.Session) -> None:
    """Print Kubernetes Secrets for the official chart to stdout (`-- ENV [--values]`); never to a file."""
    settings(session, "render")


@nox.session(name="settings-init", python=PYTHON, default=False)
def settings_init(session: nox.Session) -> None:
    """Create settings/ENV with a new age key and its .sops.yaml rule (`-- ENV`)."""
    settings(session, "init")


@nox.session(python=PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Recompile requirements/runtime.txt and dev.txt (universal, hashed) after editing the .in files."""
    session.install("uv")
    for name in ("runtime", "dev"):
        session.run("uv", "pip", "compile", "--quiet", "--universal", "--python-version", PYTHON,
                    "--generate-hashes", "--custom-compile-command", "nox -s lock", *session.posargs,
                    f"requirements/{name}.in", "-o", f"requirements/{name}.txt")
