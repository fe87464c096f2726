"""How long ``make check`` (the quick tier for everyday work) takes, and how fast the machine it ran on is.

``python -m benchmarks.quick_tier [--runs 1]``

Runs ``make check`` as a developer does (lint, types, and the tests that start no Rasa and no browser) and reports
its wall time and the CPU-seconds of every process it started. Shared two-core machines differ by 2x and more from
day to day, so it also times a fixed pure-Python workload (``reference_s``) before the run: compare wall times only
between runs whose reference is alike, or compare ``wall_per_reference``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_ITERATIONS = 20_000_000


def reference_seconds() -> float:
    """CPU-seconds of a fixed pure-Python loop: the machine's single-core speed, as the tests' own code meets it."""
    started = time.process_time()
    total = 0
    for number in range(REFERENCE_ITERATIONS):
        total += number
    return time.process_time() - started


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_make_check() -> dict[str, float | int | str]:
    """One ``make check``: wall and CPU-seconds, and pytest's summary line."""
    cpu_before, started = children_cpu_seconds(), time.monotonic()
    finished = subprocess.run(["make", "check"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    wall, cpu = time.monotonic() - started, children_cpu_seconds() - cpu_before
    summary = next((line for line in reversed(finished.stdout.splitlines()) if " passed" in line), "no summary")
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "exit_code": finished.returncode, "pytest": summary}


def main() -> None:
    """Time the reference loop and ``make check``; print one JSON line of the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    reference = reference_seconds()
    load_before = os.getloadavg()[0]
    runs = [timed_make_check() for _ in range(args.runs)]
    for run in runs:
        print(run)
    best = min(runs, key=lambda run: float(run["wall_s"]))
    figures = {
        "wall_s": best["wall_s"],
        "cpu_s": best["cpu_s"],
        "reference_s": round(reference, 2),
        "wall_per_reference": round(float(best["wall_s"]) / reference, 1),
        "target_wall_s": 120,
        "passed": all(run["exit_code"] == 0 for run in runs),
        "pytest": best["pytest"],
        "cores": os.cpu_count(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
