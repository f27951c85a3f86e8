"""Benchmark 1, throughput: records/s of an initial two-way HubSpot <-> Salesforce sync of N contacts with deals.

The seeded sandboxes are moved out of reach of Python's cycle collector before the sync (``harness.settle_heap``).
"""

from __future__ import annotations

import asyncio

from bench.harness import Population, Timer, bench_engine, parser, report, seed_sandboxes, settle_heap

TARGET = 10_000.0


async def measure(contacts: int) -> dict[str, object]:
    """Seed, run cycles until a cycle writes nothing, and time the first (initial) cycle and the whole."""
    population = Population(contacts, contacts // 10)
    seeding = Timer()
    crm, mkt = seed_sandboxes(population)
    seeded_s = seeding.stop()
    settle_heap()
    async with bench_engine(crm, mkt) as bench:
        first = Timer()
        outcome = await bench.engine.sync("bench")
        first_s = first.stop()
        cycles, settle = 1, Timer()
        while True:  # a second cycle writes back what the first one created (rollups, links): count it too
            written = crm.stats.records_written + mkt.stats.records_written
            await bench.engine.sync("bench")
            cycles += 1
            if crm.stats.records_written + mkt.stats.records_written == written or cycles > 5:
                break
        settle_s = settle.stop()
        live = {"salesforce": len(crm.table("Contact")), "hubspot": len(mkt.table("contacts"))}
    return {
        "contacts": contacts,
        "deals": population.deals,
        "records": population.records,
        "seed_seconds": round(seeded_s, 2),
        "first_cycle_seconds": round(first_s, 2),
        "records_per_second": round(population.records / first_s, 1),
        "cycles_to_quiet": cycles,
        "settle_seconds": round(settle_s, 2),
        "status": outcome.status.value,
        "counts": dict(outcome.counts),
        "api_calls": dict(outcome.api_calls),
        "contacts_after": live,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the throughput benchmark at each N asked for (default 10,000 and 100,000)."""
    cli = parser(__doc__ or "")
    cli.add_argument(
        "-n", "--contacts", type=int, nargs="+", default=[10_000, 100_000], help="distinct contacts (default 10k 100k)"
    )
    args = cli.parse_args(argv)
    runs = [asyncio.run(measure(n)) for n in args.contacts]
    rows: list[tuple[str, str, str, bool | None]] = []
    for n, figures in zip(args.contacts, runs, strict=True):
        rate = float(figures["records_per_second"])  # type: ignore[arg-type]
        rows.append((f"records/s, first cycle (N={n:,})", f"{rate:,.0f}", f">= {TARGET:,.0f}", rate >= TARGET))
    sizes = " and ".join(f"{n:,}" for n in args.contacts)
    report(
        "throughput",
        f"initial sync of {sizes} contacts (+10% deals), Salesforce <-> HubSpot, in-process",
        {"runs": runs},
        rows,
    )


if __name__ == "__main__":
    main()
