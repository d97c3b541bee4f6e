"""What every benchmark shares: its result file (benchmarks/results/NAME.json)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from airstack import paths

RESULTS = Path("benchmarks") / "results"


def write_result(name: str, value: float, unit: str, summary: str, **extra) -> Path:
    out = paths.repo_root() / RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "value": round(value, 3), "unit": unit, "summary": summary,
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{name}: {summary}")
    return out
