"""Benchmark 5, memory: peak RSS of an initial sync of N contacts, the sandboxes' own footprint subtracted.

The sync runs in a child process (``python -m bench.memory --child``): it seeds the in-process sandboxes, reads its
resident size (the baseline: interpreter, libraries and the sandboxes' data), syncs, and reports the peak from
``resource.getrusage``. The sync also creates records in the sandboxes; their growth is estimated from the seeding's
cost per record. The engine's figure is peak minus baseline minus that growth.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys

from bench.harness import REPO, Population, Timer, bench_engine, parser, report, rss_mb, seed_sandboxes

TARGET_MB = 300.0


async def child(contacts: int) -> dict[str, float]:
    """In the child: baseline after seeding, one initial sync, the peak, and the sandboxes' growth by the sync."""
    population = Population(contacts, contacts // 10)
    gc.collect()
    empty = rss_mb()
    crm, mkt = seed_sandboxes(population)
    gc.collect()
    baseline = rss_mb()
    seeded = sum(len(t) for box in (crm, mkt) for t in box.tables.values())
    per_record_kb = (baseline - empty) * 1024 / max(1, seeded)
    timer = Timer()
    async with bench_engine(crm, mkt) as bench:
        await bench.engine.sync("bench")
    seconds = timer.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    grown = sum(len(t) for box in (crm, mkt) for t in box.tables.values()) - seeded
    return {
        "before_seeding_mb": round(empty, 1),
        "baseline_mb": round(baseline, 1),
        "sandbox_kb_per_record": round(per_record_kb, 2),
        "records_created_in_sandboxes": grown,
        "sandbox_growth_mb": round(grown * per_record_kb / 1024, 1),
        "peak_mb": round(peak, 1),
        "sync_seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the memory benchmark (the sync in a child process)."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=100_000, help="distinct contacts (default 100,000)")
    cli.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(child(args.contacts))))
        return
    command = [sys.executable, "-m", "bench.memory", "--child", "-n", str(args.contacts)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S603 - our own module
    figures: dict[str, float | int] = {"contacts": args.contacts, **json.loads(done.stdout.strip().splitlines()[-1])}
    engine_mb = round(figures["peak_mb"] - figures["baseline_mb"] - figures["sandbox_growth_mb"], 1)
    figures["engine_mb"] = engine_mb
    report(
        "memory",
        f"initial sync of {args.contacts} contacts (+{args.contacts // 10} deals) in a child process",
        figures,
        [
            ("peak RSS of the whole process, MB", str(figures["peak_mb"]), "", None),
            ("sandboxes + interpreter after seeding, MB", str(figures["baseline_mb"]), "", None),
            ("sandbox growth from records the sync created, MB", str(figures["sandbox_growth_mb"]), "", None),
            ("engine peak (peak - baseline - growth), MB", str(engine_mb), f"< {TARGET_MB:.0f}", engine_mb < TARGET_MB),
        ],
    )


if __name__ == "__main__":
    main()
