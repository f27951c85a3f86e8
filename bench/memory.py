"""Benchmark 5, memory: peak RSS of the process running an initial sync of N contacts, the vendors remote.

The two seeded sandboxes are served from their own process (:mod:`bench.served`, uvicorn on 127.0.0.1); the sync
runs in another child process (``python -m bench.memory --child``) that talks to them over HTTP, as it would to
the vendors. Its resident size is its own: the figure is its peak (``getrusage``'s ``ru_maxrss``), nothing
subtracted. The child also reports its resident size just before the sync (interpreter, libraries, an engine with
its store open) and samples it during the sync, so growth with N shows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import threading
import time

from bench.harness import REPO, Population, Timer, parser, report, rss_mb
from bench.served import ServedUrls, served_engine, served_sandboxes

TARGET_MB = 300.0
SAMPLES = 24
"""Resident-size samples kept from the sync (evenly spaced in time)."""


class RssSampler:
    """Samples this process's resident size every ``every`` seconds on a thread, until stopped."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append((time.monotonic() - self._started, rss_mb()))

    def spread(self, keep: int = SAMPLES) -> list[list[float]]:
        """At most ``keep`` samples, evenly spaced: [seconds, MB] each."""
        step = max(1, len(self.samples) // keep)
        return [[round(t), round(mb, 1)] for t, mb in self.samples[::step]]


async def child(urls: ServedUrls) -> dict[str, object]:
    """In the sync process: resident size before the sync, one initial sync, the peak."""
    async with served_engine(urls) as (engine, _store):
        gc.collect()
        baseline = rss_mb()
        timer = Timer()
        with RssSampler() as sampler:
            outcome = await engine.sync("bench")
        seconds = timer.stop()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(peak, 1),
        "sync_seconds": round(seconds, 1),
        "status": outcome.status.value,
        "api_calls": dict(outcome.api_calls),
        "rss_during_sync_mb": sampler.spread(),
    }


def main(argv: list[str] | None = None) -> None:
    """Serve the sandboxes, run the sync in a child process, report its peak resident size."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=100_000, help="distinct contacts (default 100,000)")
    cli.add_argument("--child", metavar="URLS", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(child(ServedUrls(**json.loads(args.child))))))
        return
    population = Population(args.contacts, args.contacts // 10)
    with served_sandboxes(population) as urls:
        command = [sys.executable, "-m", "bench.memory", "--child", json.dumps(urls.__dict__)]
        done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)  # noqa: S603
        server_mb = urls.server_peak_mb()
    figures: dict[str, object] = {"contacts": args.contacts, **json.loads(done.stdout.strip().splitlines()[-1])}
    figures["sandbox_server_peak_mb"] = round(server_mb, 1) if server_mb is not None else None
    peak = float(figures["peak_mb"])  # type: ignore[arg-type]
    report(
        "memory",
        f"initial sync of {args.contacts} contacts (+{population.deals} deals), sandboxes in another process",
        figures,
        [
            ("sync process before the sync, MB", str(figures["baseline_mb"]), "", None),
            ("sync process peak RSS, MB", str(peak), f"< {TARGET_MB:.0f}", peak < TARGET_MB),
            ("sandbox server peak RSS (not counted), MB", str(figures["sandbox_server_peak_mb"]), "", None),
            ("sync wall time, s", str(figures["sync_seconds"]), "", None),
        ],
    )


if __name__ == "__main__":
    main()
