"""Runs inside the pandas-basic worker pod: summarise the day's orders into a parquet file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--date", required=True)
    args = parser.parse_args()
    import pandas as pd

    data = Path(os.environ.get("DATA_DIR", "/data"))
    orders = pd.read_csv(data / "orders" / f"{args.date}.csv")
    summary = orders.groupby("customer", as_index=False)["amount"].sum()
    out = data / "summaries" / f"{args.date}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    summary.to_parquet(out)
    print(f"wrote {len(summary)} rows to {out}")


if __name__ == "__main__":
    main()
