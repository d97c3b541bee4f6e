"""``nox -s upgrade -- TARGET`` arguments, parsed and checked (pure): one line per mistake."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from airstack.errors import ConfigError
from airstack.upgrade.locks import AIRFLOW, PROVIDER_PREFIX

USAGE = ("nox -s upgrade -- [AIRFLOW_VERSION] [--provider NAME==VERSION ...] [--chart VERSION] [--db-rows N] [--json] "
         "[--apply]")


@dataclass(frozen=True)
class Request:
    """What to rehearse: new pins for requirements/runtime.in, an official chart version, and what to do after."""

    pins: tuple[tuple[str, str], ...]  # (package, version), Airflow first
    chart: str | None = None
    json: bool = False
    apply: bool = False
    db_rows: int = 0  # seed a metadata database with this many task instances and migrate it (0: not)

    @property
    def title(self) -> str:
        moves = [f"{name}=={version}" for name, version in self.pins]
        return ", ".join(moves + ([f"chart {self.chart}"] if self.chart else []))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, our exit path (argparse would print usage and exit 2)
        raise ConfigError(f"{message} (usage: {USAGE})")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nox -s upgrade --", usage=USAGE, description=(
        "Rehearse an upgrade of Airflow, providers or the official chart in a scratch environment: "
        "the package diff, the DAG checks and runs before/after, config lint, the chart schema."))
    parser.add_argument("airflow", nargs="?", metavar="AIRFLOW_VERSION", help="the Airflow version to move to")
    parser.add_argument("--provider", action="append", default=[], metavar="NAME==VERSION",
                        help="a provider to move (repeatable): `postgres==7.0.0` or the full package name")
    parser.add_argument("--chart", metavar="VERSION", help="check the chart values against this official chart")
    parser.add_argument("--db-rows", type=int, metavar="N",
                        help="seed a metadata database with N task instances and time its migration there and back")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    parser.add_argument("--apply", action="store_true", help="write the new runtime.in pins and recompiled locks")
    return parser


def _version(text: str, what: str) -> str:
    try:
        Version(text)
    except InvalidVersion:
        raise ConfigError(f"{what}: {text!r} is not a version (e.g. 3.3.1)") from None
    return text


def provider_pin(spec: str) -> tuple[str, str]:
    """``postgres==7.0.0`` or ``apache-airflow-providers-postgres==7.0.0`` -> (the package, the version)."""
    name, sep, version = spec.partition("==")
    name = canonicalize_name(name.strip()) if name.strip() else ""
    if not sep or not name or not version.strip():
        raise ConfigError(f"--provider {spec!r}: expected NAME==VERSION (e.g. --provider postgres==7.0.0)")
    package = name if name.startswith(PROVIDER_PREFIX) else PROVIDER_PREFIX + name
    return package, _version(version.strip(), f"--provider {spec}")


def parse(argv: list[str]) -> Request:
    args = _parser().parse_args(argv)
    pins = [(AIRFLOW, _version(args.airflow, "AIRFLOW_VERSION"))] if args.airflow else []
    pins += [provider_pin(spec) for spec in args.provider]
    packages = [package for package, _ in pins]
    if len(set(packages)) != len(packages):
        raise ConfigError(f"{', '.join(sorted({p for p in packages if packages.count(p) > 1}))}: given twice")
    if not pins and not args.chart:
        raise ConfigError(f"nothing to rehearse: give an Airflow version, --provider or --chart (usage: {USAGE})")
    if args.chart:
        _version(args.chart, "--chart")
    if args.apply and not pins:
        raise ConfigError("--apply: only package moves are applied (an Airflow version or --provider)")
    if args.db_rows is not None and (args.db_rows < 1 or not args.airflow):
        raise ConfigError(f"--db-rows {args.db_rows}: needs a positive N and an Airflow version to migrate to "
                          "(e.g. nox -s upgrade -- 3.2.2 --db-rows 100000)")
    return Request(tuple(pins), args.chart, args.json, args.apply, args.db_rows or 0)
