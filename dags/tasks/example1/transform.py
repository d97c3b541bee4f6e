"""Runs in the example1 project's pod: summarise the day's orders per customer.

Reads ``<DATA_DIR>/orders/<date>.csv`` (written by extract.py), keeps orders of at least
``MIN_ORDER_AMOUNT`` (the project's ConfigMap), writes ``<DATA_DIR>/summaries/<date>.json``
in ``REPORT_CURRENCY``. It records a SHA-256 fingerprint of ``API_TOKEN`` (the project's
Secret) to show which token it ran with, never the token itself.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--date", required=True)
    args = parser.parse_args()
    data = Path(os.environ.get("DATA_DIR", "/data"))
    minimum = Decimal(os.environ.get("MIN_ORDER_AMOUNT", "0"))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    with (data / "orders" / f"{args.date}.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if Decimal(row["amount"]) >= minimum:
                totals[row["customer"]] += Decimal(row["amount"])
    summary = {
        "date": args.date,
        "currency": os.environ["REPORT_CURRENCY"],
        "totals": {customer: str(total) for customer, total in sorted(totals.items())},
        "api_token_sha256": hashlib.sha256(os.environ["API_TOKEN"].encode()).hexdigest(),
    }
    out = data / "summaries" / f"{args.date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {len(totals)} customer totals to {out}")


if __name__ == "__main__":
    main()
