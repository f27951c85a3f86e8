"""Benchmark 1, throughput: records/s of an initial two-way HubSpot <-> Salesforce sync of N contacts with deals."""

from __future__ import annotations

import asyncio

from bench.harness import Population, Timer, bench_engine, parser, report, seed_sandboxes

TARGET = 10_000.0


async def measure(contacts: int) -> dict[str, object]:
    """Seed, run cycles until a cycle writes nothing, and time the first (initial) cycle and the whole."""
    population = Population(contacts, contacts // 10)
    seeding = Timer()
    crm, mkt = seed_sandboxes(population)
    seeded_s = seeding.stop()
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
    """Run the throughput benchmark."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=10_000, help="distinct contacts (default 10,000)")
    args = cli.parse_args(argv)
    figures = asyncio.run(measure(args.contacts))
    rate = float(figures["records_per_second"])  # type: ignore[arg-type]
    report(
        "throughput",
        f"initial sync of {args.contacts} contacts (+{args.contacts // 10} deals), Salesforce <-> HubSpot, in-process",
        figures,
        [(f"records/s, first cycle (N={args.contacts})", f"{rate:,.0f}", f">= {TARGET:,.0f}", rate >= TARGET)],
    )


if __name__ == "__main__":
    main()
