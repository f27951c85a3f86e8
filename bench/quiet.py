"""Benchmark 3, quiet cycle: API calls and wall time of a cycle with no changes over a store of N linked contacts."""

from __future__ import annotations

import asyncio

from bench.harness import Bench, Timer, parser, report
from bench.steady import steady

TARGET_MS = 200.0
TOUCH_STREAMS = 1
OBJECTS = {"salesforce": ("Contact", "Lead", "Opportunity"), "hubspot": ("contacts", "deals")}


async def _timed_cycle(bench: Bench) -> tuple[float, dict[str, dict[str, int]], dict[str, int]]:
    bench.reset_stats()
    timer = Timer()
    outcome = await bench.engine.sync("bench")
    return timer.stop() * 1000, bench.calls(), dict(outcome.counts)


async def measure(contacts: int, repeats: int) -> dict[str, object]:
    """Converge, step past the lookback, then time ``repeats`` quiet cycles (best and median)."""
    async with steady(contacts) as (bench, _clock):
        runs = [await _timed_cycle(bench) for _ in range(repeats)]
        linked = bench.store.outbox_depth()
    times = sorted(ms for ms, _, _ in runs)
    calls = runs[-1][1]
    return {
        "contacts": contacts,
        "outbox_depth_after": linked,
        "cycle_ms": [round(ms, 1) for ms, _, _ in runs],
        "median_ms": round(times[len(times) // 2], 1),
        "best_ms": round(times[0], 1),
        "calls": calls,
        "total_calls": sum(sum(c.values()) for c in calls.values()),
        # one read per object per side, and one per touch stream (Salesforce campaign members), which a campaign
        # response changes without changing the person
        "minimum_calls": sum(len(objs) for objs in OBJECTS.values()) + TOUCH_STREAMS,
        "counts": runs[-1][2],
    }


def main(argv: list[str] | None = None) -> None:
    """Run the quiet-cycle benchmark."""
    cli = parser(__doc__ or "")
    cli.add_argument(
        "-n", "--contacts", type=int, default=100_000, help="contacts converged in the store (default 100,000)"
    )
    cli.add_argument("--repeats", type=int, default=5)
    args = cli.parse_args(argv)
    figures = asyncio.run(measure(args.contacts, args.repeats))
    calls, minimum, median = figures["total_calls"], figures["minimum_calls"], float(figures["median_ms"])  # type: ignore[arg-type]
    report(
        "quiet",
        f"a cycle with no changes, {args.contacts} contacts converged and older than the lookback, in-process",
        figures,
        [
            ("API calls per quiet cycle", str(calls), f"{minimum} (1/object/side + streams)", calls == minimum),
            ("median wall time, ms", f"{median:.0f}", f"< {TARGET_MS:.0f}", median < TARGET_MS),
        ],
    )


if __name__ == "__main__":
    main()
