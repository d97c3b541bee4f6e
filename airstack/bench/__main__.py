"""``python -m airstack.bench [NAME ...] [--workers N] [--sizes N ...]``: run benchmarks (none named: all)."""

from __future__ import annotations

import argparse

from airstack.bench import BENCHMARKS, load
from airstack.cli import run_main


def parser() -> argparse.ArgumentParser:
    import airstack.bench

    p = argparse.ArgumentParser(prog="nox -s bench --", description=airstack.bench.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], metavar="NAME",
                   help=f"one of {', '.join(BENCHMARKS)} (default: all)")
    p.add_argument("--workers", type=int, default=0, help="dag-integrity-scale: pool size (default: cores)")
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000], help="dag-integrity-scale sizes")
    return p


def main(argv: list[str]) -> int:
    from airstack.bench import settings_import

    if argv[:1] == [settings_import.SETTINGS_IMPORT_CHILD]:  # the whole-command variant's own process
        return settings_import.settings_import_child(argv[1:])
    args = parser().parse_args(argv)
    for name in args.names or BENCHMARKS:
        load(name)(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
