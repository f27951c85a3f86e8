"""Run every benchmark with its defaults, each in its own process: ``python -m bench`` (what ``make bench`` runs)."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.harness import REPO

BENCHMARKS = ("throughput", "floor", "vsfloor", "frugality", "quiet", "ratelimit", "memory", "naive")


def main() -> int:
    """Run them in order; the exit status is the number that failed to run."""
    failed = 0
    for name in BENCHMARKS:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=REPO, check=False)  # noqa: S603
        print(f"  ({name}: {time.perf_counter() - started:.0f} s, exit {done.returncode})", flush=True)
        failed += done.returncode != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
