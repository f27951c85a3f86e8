"""Benchmark 4, rate-limit ceiling: records/s under HubSpot's enforced window and Salesforce latency, vs the bound.

HubSpot's 100 requests / 10 s is scaled ten-fold to 100 / 1 s (and its search limit from 5/s to 50/s) so the run
takes a minute; Salesforce answers every call after 50 ms. The workload is the daemon's steady state: cycles that
each carry a batch of changed contacts from each side to the other.
"""

from __future__ import annotations

import asyncio
from math import ceil

from bench.harness import (
    Population,
    ShiftedClock,
    Timer,
    bench_engine,
    config_text,
    converge,
    parser,
    report,
    seed_sandboxes,
)
from bench.steady import PAST_LOOKBACK, edit

TARGET = 0.90
HUBSPOT_WINDOW = (100, 1.0)
HUBSPOT_SEARCH = (50, 1.0)
SF_LATENCY_S = 0.05
SF_CONCURRENCY = 25
LIMITED_CONFIG = config_text(
    mkt_extra=(
        f"requests_per_window: {HUBSPOT_WINDOW[0]}, window_seconds: {HUBSPOT_WINDOW[1]}, "
        f"search_requests_per_window: {HUBSPOT_SEARCH[0]}, search_window_seconds: {HUBSPOT_SEARCH[1]}"
    )
)


def bound_seconds(hubspot: dict[str, int], salesforce: dict[str, int]) -> dict[str, float]:
    """The least time the limits allow for these calls: each HubSpot bucket, and Salesforce's latency."""
    search = sum(n for endpoint, n in hubspot.items() if endpoint.endswith("/search"))
    return {
        "hubspot_window": ceil(sum(hubspot.values()) / HUBSPOT_WINDOW[0] - 1) * HUBSPOT_WINDOW[1],
        "hubspot_search": ceil(search / HUBSPOT_SEARCH[0] - 1) * HUBSPOT_SEARCH[1],
        "salesforce_latency": sum(salesforce.values()) * SF_LATENCY_S / SF_CONCURRENCY,
        "salesforce_latency_serial": sum(salesforce.values()) * SF_LATENCY_S,
    }


async def measure(contacts: int, cycles: int, changed: int) -> dict[str, object]:
    """Converge unthrottled, then switch limits on and run ``cycles`` cycles of ``changed`` edits per side."""
    clock = ShiftedClock()
    crm, mkt = seed_sandboxes(Population(contacts, contacts // 10), clock)
    async with bench_engine(crm, mkt, config=LIMITED_CONFIG) as bench:
        await converge(bench)
        clock.advance(PAST_LOOKBACK)
        mkt.knobs.update({"enforce_limits": True, "requests_per_window": HUBSPOT_WINDOW[0]})
        mkt.knobs.update({"window_s": HUBSPOT_WINDOW[1], "bucket_limits": {"search": HUBSPOT_SEARCH}})
        crm.knobs.latency_s = SF_LATENCY_S
        bench.reset_stats()
        timer = Timer()
        for cycle in range(cycles):
            edit(bench, changed, changed, tag=f"C{cycle}")
            await bench.engine.sync("bench")
        seconds = timer.stop()
        calls = bench.calls()
        violations = mkt.stats.violations + crm.stats.violations
    records = 2 * changed * cycles
    bounds = bound_seconds(calls["hubspot"], calls["salesforce"])
    limit_bound = max(bounds["hubspot_window"], bounds["hubspot_search"], bounds["salesforce_latency"])
    return {
        "contacts": contacts,
        "cycles": cycles,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_second": round(records / seconds, 1),
        "bound_seconds": bounds,
        "limit_bound_records_per_second": round(records / limit_bound, 1),
        "fraction_of_bound": round(limit_bound / seconds, 3),
        "violations": violations,
        "calls": calls,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the rate-limit ceiling benchmark."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=2_000, help="contacts in the store (default 2,000)")
    cli.add_argument("--cycles", type=int, default=40)
    cli.add_argument("--changed", type=int, default=10, help="contacts changed per side per cycle")
    args = cli.parse_args(argv)
    figures = asyncio.run(measure(args.contacts, args.cycles, args.changed))
    fraction, violations = float(figures["fraction_of_bound"]), int(figures["violations"])  # type: ignore[arg-type]
    report(
        "ratelimit",
        f"{args.cycles} cycles x {args.changed} changed contacts per side; HubSpot 100 req/1 s (scaled from 10 s), "
        "search 50/s, Salesforce 50 ms latency",
        figures,
        [
            ("records/s achieved", str(figures["records_per_second"]), "", None),
            ("records/s limit-bound maximum", str(figures["limit_bound_records_per_second"]), "", None),
            ("fraction of the limit-bound maximum", f"{fraction:.0%}", f">= {TARGET:.0%}", fraction >= TARGET),
            ("limit violations counted by the sandboxes", str(violations), "0", violations == 0),
        ],
    )


if __name__ == "__main__":
    main()
