"""What every benchmark line carries, and the timing summary they share.

One JSON object per line: the benchmark, the metric, the machine's core count, its 1-minute load average
when the line was printed (this is a shared machine: the load says how busy the neighbours were) and the
run's start time, then the benchmark's own fields.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RUN_DATE = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def emit_line(bench: str, metric: str, **fields: Any) -> None:
    head: dict[str, Any] = {"bench": bench, "metric": metric}
    if "n" in fields:
        head["n"] = fields.pop("n")
    machine = {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2), "date": RUN_DATE}
    print(json.dumps({**head, **machine, **fields}), flush=True)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def ms_stats(values: Sequence[float], prefix: str = "", digits: int = 3) -> dict[str, float]:
    """p50 / p99 / mean of millisecond timings, rounded for printing."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        f"{prefix}p50_ms": round(statistics.median(ordered), digits),
        f"{prefix}p99_ms": round(p99, digits),
        f"{prefix}mean_ms": round(statistics.fmean(ordered), digits),
    }
