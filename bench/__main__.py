"""Run every benchmark with its defaults, each in its own process: ``python -m bench`` (what ``make bench`` runs).

The PostgreSQL benchmarks (``pgstore``, ``replicas``) run when a server answers at ``$CLOSELOOP_TEST_POSTGRES``
(else the local test server); when none answers, one line says they were skipped and why.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.harness import REPO
from closeloop.state_url import redact
from closeloop.testing.postgres import server_url, unreachable

BENCHMARKS = ("throughput", "floor", "vsfloor", "frugality", "quiet", "ratelimit", "memory", "naive")
POSTGRES_BENCHMARKS = ("pgstore", "replicas")


def chosen(url: str) -> tuple[list[str], str | None]:
    """The benchmarks to run with the PostgreSQL server at ``url``, and the line saying why some are skipped."""
    problem = unreachable(url)
    if problem is None:
        return [*BENCHMARKS, *POSTGRES_BENCHMARKS], None
    return list(BENCHMARKS), (
        f"skipped {', '.join(POSTGRES_BENCHMARKS)}: no PostgreSQL server answers at {redact(url)} ({problem});"
        " set CLOSELOOP_TEST_POSTGRES to name one"
    )


def main() -> int:
    """Run them in order; the exit status is the number that failed to run."""
    names, skipped = chosen(server_url())
    if skipped is not None:
        print(f"  ({skipped})", flush=True)
    failed = 0
    for name in names:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=REPO, check=False)  # noqa: S603
        print(f"  ({name}: {time.perf_counter() - started:.0f} s, exit {done.returncode})", flush=True)
        failed += done.returncode != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
