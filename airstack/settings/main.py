"""``python -m airstack.settings VERB [ENV]``: the ``settings-*`` nox sessions.

Verbs: check, diff, apply, keys, render, edit, init. Decrypted settings stay in this
process's memory: nothing is written to disk or passed in argv, and values are never printed
(except by ``render``, whose output is meant for a pipe).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

from airstack import paths
from airstack.airflow_env import configured
from airstack.cli import confirm, run_main
from airstack.errors import AirstackError, ConfigError
from airstack.settings import keys as keys_mod
from airstack.settings import plan as plan_mod
from airstack.settings import sops, sops_config, store
from airstack.settings.schema import SettingsFile

console = Console(soft_wrap=True)
DB_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"


def actions_table(actions: list[plan_mod.Action], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("kind", "id", "action", "fields"):
        table.add_column(column)
    colour = {"add": "green", "change": "yellow", "remove": "red", "unchanged": "dim"}
    for a in actions:
        table.add_row(a.kind, a.name, f"[{colour[a.action]}]{a.action}[/]", ", ".join(a.fields))
    return table


def summary(actions: list[plan_mod.Action]) -> str:
    counts = {k: sum(1 for a in actions if a.action == k) for k in ("add", "change", "remove", "unchanged")}
    return ", ".join(f"{n} {k}" for k, n in counts.items())


# ------------------------------------------------------------------------------ airflow --
@contextlib.contextmanager
def airflow_home() -> Iterator[None]:
    """An empty, temporary AIRFLOW_HOME for this command when none is set; removed when it ends."""
    if os.environ.get("AIRFLOW_HOME"):
        yield
        return
    home = tempfile.mkdtemp(prefix="airstack-settings-home-")
    try:
        with configured({"AIRFLOW_HOME": home}):
            yield
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def _airflow(settings: SettingsFile, env: str) -> Iterator[None]:
    """This process's Airflow on the target database with the environment's Fernet key, meanwhile.

    The key is in this process's environment for Airflow while the block runs; children (sops) never
    get it (:data:`airstack.settings.sops.SOPS_ENV`).
    """
    if not os.environ.get(DB_ENV):
        raise AirstackError(f"no Airflow database to compare with: set {DB_ENV}, or start the local "
                            "environment (`nox -s up`)")
    fernet = settings.airflow.keys.airflow_fernet_key()
    if fernet is None:
        raise ConfigError(f"settings/{env}/secret.yaml: airflow.keys.fernet_key: missing; "
                          f"run `nox -s settings-keys -- {env}`")
    with configured({"AIRFLOW__CORE__FERNET_KEY": fernet,
                     "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")}):
        yield


@contextlib.contextmanager
def _database_errors(env: str) -> Iterator[None]:
    """The importer's expected failures, as one line naming the file and field to act on."""
    from airstack.settings.importer import FernetMismatchError

    try:
        yield
    except FernetMismatchError as exc:
        raise ConfigError(
            f"settings/{env}/secret.yaml: airflow.keys.fernet_key: {exc}: add the key the database was written "
            f"with to airflow.keys.fernet_key_previous (`nox -s settings-edit -- {env}`), then run "
            f"`nox -s settings-keys -- {env} --finish-rotation` to re-encrypt with fernet_key") from None


def _check_database() -> None:
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from airstack import airflow_compat

    try:
        tables = set(inspect(airflow_compat.engine()).get_table_names())
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        raise AirstackError(f"cannot reach the Airflow database in {DB_ENV}: {first}") from None
    if not {"connection", "variable", "slot_pool"} <= tables:
        raise AirstackError(f"the database in {DB_ENV} is not a migrated Airflow database (run `airflow db migrate`)")


# -------------------------------------------------------------------------------- verbs --
def _validate(args, root: Path, counts) -> tuple[list[str], list[str]]:
    """Load and validate every environment whose key is here (or those named): (valid ones, ones without a key)."""
    valid, keyless = [], []
    for env in args.envs or store.environments(root):
        try:
            settings = store.load(root, env)
        except sops.SopsError as exc:
            if not args.envs and "none of its keys is available" in str(exc):
                console.print(f"{env}: [yellow]skipped[/] (no key here: {exc})", highlight=False)
                counts.add_skip("its key is not here (by design: an environment's key is with those who deploy it)")
                keyless.append(env)
                continue
            raise
        except ConfigError as exc:
            counts.failed += 1
            print(str(exc), file=sys.stderr)
            continue
        a = settings.airflow
        counts.passed += 1
        valid.append(env)
        console.print(f"{env}: [green]valid[/] ({len(a.connections)} connections, {len(a.variables)} variables, "
                      f"{len(a.pools)} pools)", highlight=False)
    return valid, keyless


def cmd_check(args, root: Path) -> int:
    from airstack.verdict import Tally

    store.load_project_options(root)
    counts = Tally()
    checked, keyless = _validate(args, root, counts)
    config = sops_config.load(root / ".sops.yaml")
    for env in args.envs or store.environments(root):
        for missing in sops_config.missing_recipients(config, env, store.secret_path(root, env)):
            console.print(f"{env}: [yellow]warning[/] .sops.yaml lists {missing} but settings/{env}/secret.yaml is "
                          f"not encrypted for it: run `sops updatekeys settings/{env}/secret.yaml` where that key "
                          "is usable", highlight=False)
    parity_note = _parity(args, root, counts)
    if not checked and not counts.failed:
        counts.add_not_run("no environment's settings could be read here: nothing was validated")
        print("settings: no environment was validated (no key of any is here)", file=sys.stderr)
    if args.report:
        args.report.write_text(json.dumps({"tally": counts.as_dict(), "empty_by_design": "",
                                           "checked": f"validated: {', '.join(checked) or 'none'}; no key here: "
                                                      f"{', '.join(keyless) or 'none'}; parity: {parity_note}"}))
    return 1 if counts.failed or not checked else 0


def _parity(args, root: Path, counts) -> str:
    """DAG parity, each missing item told (and counted) once with the environments that lack it; what was checked."""
    from airstack.settings import parity

    if args.no_parity:
        return "left to the gate's dags lane (--no-parity)"
    envs = args.envs or store.environments(root)
    problems = parity.problems(root, paths.dags_folder(), envs)
    for problem in problems:
        print(f"parity: {problem}", file=sys.stderr)
    counts.failed += len(problems)
    counts.passed += not problems
    if not problems:
        console.print(f"[green]parity ok[/] in {', '.join(envs)} (every connection, variable and image the DAGs "
                      "use)", highlight=False)
    return ", ".join(envs) or "none"


def cmd_diff(args, root: Path) -> int:
    from airstack.settings import importer

    settings = store.load(root, args.env)
    if args.against:
        from airstack.settings import drift

        actions = drift.drift(importer.desired_state(settings.airflow), args.against)
        differ = plan_mod.changes(actions)
        console.print(actions_table(actions, f"settings/{args.env} against {args.against}"))
        console.print(summary(actions) + ("" if differ else ": in sync"))
        return 1 if differ else 0
    with _airflow(settings, args.env):
        _check_database()
        with _database_errors(args.env):
            actions = importer.apply(settings.airflow, prune=args.prune, dry_run=True)
    console.print(actions_table(actions, f"settings/{args.env}: what `settings-apply` would do"))
    console.print(summary(actions))
    return 0


def confirm_apply(root: Path, env: str, yes: bool, **how) -> bool:
    """A protected environment's database (deploy.yaml ``protected``) is changed only after a yes."""
    from airstack.settings import deploy_file

    return confirm(f"Apply settings/{env} to the {env} database?", yes=yes, protected=deploy_file.protected(root, env),
                   **how)


def cmd_apply(args, root: Path) -> int:
    from airstack.settings import importer

    settings = store.load(root, args.env)
    with _airflow(settings, args.env):
        _check_database()
        if not confirm_apply(root, args.env, args.yes or args.dry_run):  # a dry run changes nothing
            console.print("nothing applied")
            return 1
        with _database_errors(args.env):
            actions = importer.apply(settings.airflow, prune=args.prune, dry_run=args.dry_run)
    console.print(actions_table(actions, f"settings/{args.env}" + (" (dry run)" if args.dry_run else "")))
    if not plan_mod.changes(actions):
        console.print(f"nothing to change: the database already matches settings/{args.env}")
    else:
        console.print(summary(actions) + (" (dry run: nothing written)" if args.dry_run else ""))
    return 0


def cmd_keys(args, root: Path) -> int:
    """Changes airflow.keys only (``sops set``), leaving every other value of the file; one writer at a time."""
    with store.writing(root, args.env):
        return _keys(args, root)


def _keys(args, root: Path) -> int:
    settings = store.load(root, args.env)
    keys = settings.airflow.keys
    if args.rotate_fernet:
        keys = keys_mod.rotate_fernet(keys)
        done = ["fernet_key rotated: the old key stays readable until `--finish-rotation`"]
    elif args.finish_rotation:
        if not keys.fernet_key_previous:
            raise AirstackError(f"settings/{args.env} has no previous Fernet key: nothing to finish")
        if not args.skip_reencrypt:
            from airstack.settings.importer import reencrypt

            with _airflow(settings, args.env):
                _check_database()
                with _database_errors(args.env):
                    count = reencrypt()
            console.print(f"re-encrypted {count} connections and variables with the current key")
        keys = keys_mod.finish_rotation(keys)
        done = ["previous Fernet keys removed"]
    else:
        keys, added = keys_mod.fill_missing(keys)
        done = [f"generated {', '.join(added)}"] if added else []
    if not done:
        console.print(f"settings/{args.env} already has every key")
        return 0
    store.save_keys(root, args.env, keys.model_dump(exclude_none=True, exclude_defaults=False))
    for line in done:
        console.print(f"settings/{args.env}: {line}")
    return 0


def cmd_render(args, root: Path) -> int:
    import yaml

    from airstack.settings import render

    settings = store.load(root, args.env)
    if args.values:
        sys.stdout.write(yaml.safe_dump(render.chart_values(args.release), sort_keys=False))
    else:
        documents = render.k8s_secrets(settings.airflow, args.env, args.release, args.namespace)
        sys.stdout.write(render.to_yaml(documents))
    return 0


def cmd_edit(args, root: Path) -> int:
    from airstack.settings import edited

    path = store.secret_path(root, args.env)
    before = path.read_text()
    code = sops.edit(path, env=args.env, key_env=keys_mod.key_env(root, args.env), root=root)
    if code == sops.NOT_MODIFIED:
        console.print(f"settings/{args.env}: no change made (the file is as it was)")
        return 0
    if code != 0:
        raise AirstackError(sops.explain(code, path.relative_to(root).as_posix(), args.env, ""))
    lost = edited.problems(path, path.relative_to(root).as_posix(), store.decrypt_raw(root, args.env))
    if lost:  # the file as it was: nothing of this edit is kept
        sops.write_atomically(path, before)
        raise ConfigError("\n".join([*lost, f"settings/{args.env}/secret.yaml: not saved (the file is as it was)"]))
    settings = store.load(root, args.env)
    console.print(f"settings/{args.env}: saved and valid ({len(settings.airflow.connections)} connections)")
    return 0


def cmd_init(args, root: Path) -> int:
    from airstack.settings.sops_config import add_recipient

    env_dir = store.settings_dir(root) / args.env
    if (env_dir / store.SECRET_FILE).exists():
        raise AirstackError(f"settings/{args.env}/secret.yaml exists; "
                            f"edit it with `nox -s settings-edit -- {args.env}`")
    pair = keys_mod.generate_age_key()
    env_dir.mkdir(parents=True, exist_ok=True)
    add_recipient(root / ".sops.yaml", args.env, pair.recipient)
    keys, _ = keys_mod.fill_missing(keys_mod.Keys())
    document = {"airflow": {"keys": keys.model_dump(exclude_none=True), "connections": [], "variables": {},
                            "pools": []}}
    ciphertext = sops.encrypt(document, env_dir / store.SECRET_FILE, env=args.env, key_env={}, root=root)
    sops.write_atomically(env_dir / store.SECRET_FILE, ciphertext)
    if args.commit_key:
        (env_dir / keys_mod.COMMITTED_KEY).write_text(pair.identity + "\n")
        console.print(f"settings/{args.env}: created; its key is in settings/{args.env}/age.key (committed: "
                      "use this only for throwaway credentials)")
    else:
        console.print(f"settings/{args.env}: created for recipient {pair.recipient}. Its private key follows, shown "
                      "once: keep it in your password manager and in CI as SOPS_AGE_KEY.", highlight=False)
        print(pair.identity)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m airstack.settings", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    c = sub.add_parser("check", help="validate every environment whose key is here, and check DAG parity")
    c.add_argument("envs", nargs="*")
    c.add_argument("--no-parity", action="store_true",
                   help="leave DAG parity out (`nox -s test` checks it in its dags lane, which knows the DAG files "
                        "that do not import)")
    c.add_argument("--report", metavar="FILE", type=Path, help="write what was checked to FILE (the gate's lane)")
    d = sub.add_parser("diff", help="what apply would change (values redacted)")
    d.add_argument("env")
    d.add_argument("--against", metavar="URL",
                   help="compare with a running Airflow's REST API instead; exit 1 on drift")
    d.add_argument("--prune", action="store_true", help="also list what apply --prune would remove")
    a = sub.add_parser("apply", help=f"import into the Airflow database in {DB_ENV}, in one transaction")
    a.add_argument("env")
    a.add_argument("--prune", action="store_true", help="remove what the file does not list (never default_pool)")
    a.add_argument("--dry-run", action="store_true")
    a.add_argument("--yes", action="store_true", help="do not ask before changing a protected environment")
    k = sub.add_parser("keys", help="generate missing Fernet/API/JWT keys; rotate the Fernet key")
    k.add_argument("env")
    group = k.add_mutually_exclusive_group()
    group.add_argument("--rotate-fernet", action="store_true")
    group.add_argument("--finish-rotation", action="store_true",
                       help=f"re-encrypt the database in {DB_ENV} with the new key, then drop the old ones")
    k.add_argument("--skip-reencrypt", action="store_true", help="with --finish-rotation: the database was "
                   "re-encrypted already (`airflow rotate-fernet-key`)")
    r = sub.add_parser("render", help="Kubernetes Secrets for the official chart, to stdout")
    r.add_argument("env")
    r.add_argument("--release", default="airflow")
    r.add_argument("--namespace")
    r.add_argument("--values", action="store_true", help="print the chart values that use the Secrets instead")
    e = sub.add_parser("edit", help="open the file in sops' editor ($EDITOR), then validate it")
    e.add_argument("env")
    i = sub.add_parser("init", help="create a new environment with its own age key")
    i.add_argument("env")
    i.add_argument("--commit-key", action="store_true", help="store the key in settings/ENV/age.key (local only)")
    return p


VERBS = {"check": cmd_check, "diff": cmd_diff, "apply": cmd_apply, "keys": cmd_keys, "render": cmd_render,
         "edit": cmd_edit, "init": cmd_init}


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    root = paths.repo_root()
    with airflow_home():
        return VERBS[args.verb](args, root)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
