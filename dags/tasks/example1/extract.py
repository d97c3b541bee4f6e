"""Runs in the example1 project's pod: land the day's orders in the project's data folder.

A real task would fetch them from an API with the project's API_TOKEN (its Secret); the
example writes a fixed sample so that the run is reproducible.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

SAMPLE = [("acme", "120.00"), ("acme", "57.50"), ("globex", "349.99"), ("initech", "5.25"), ("acme", "4.00")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--date", required=True)
    args = parser.parse_args()
    if not os.environ.get("API_TOKEN"):
        raise SystemExit("API_TOKEN is not set: the project's Secret did not reach the pod")
    out = Path(os.environ.get("DATA_DIR", "/data")) / "orders" / f"{args.date}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "amount"])
        writer.writerows(SAMPLE)
    print(f"wrote {len(SAMPLE)} orders to {out}")


if __name__ == "__main__":
    main()
