"""Benchmark 2, API frugality: calls per 1,000 changed records, by endpoint, against the fewest calls possible."""

from __future__ import annotations

import asyncio
from math import ceil

from bench.harness import parser, report
from bench.steady import edit, steady

TARGET_OVERHEAD = 0.05
MAX_PAGE = {"salesforce": 2000, "hubspot": 200}  # a SOQL batch; a HubSpot search page
MAX_WRITE = {"salesforce": 200, "hubspot": 100}  # sObject Collections; HubSpot batch endpoints
OBJECTS = {"salesforce": 3, "hubspot": 2}  # Contact, Lead, Opportunity; contacts, deals


def minimum_calls(changed: dict[str, int]) -> dict[str, int]:
    """Fewest calls to carry ``changed`` records of each side to the other: pages read plus batches written."""
    other = {"salesforce": "hubspot", "hubspot": "salesforce"}
    return {
        side: (OBJECTS[side] - 1) + ceil(changed[side] / MAX_PAGE[side]) + ceil(changed[other[side]] / MAX_WRITE[side])
        for side in changed
    }


async def measure(contacts: int, changed: int) -> dict[str, object]:
    """Converge, then change ``changed`` linked contacts (half per side) and count one cycle's calls."""
    per_side = {"salesforce": changed // 2, "hubspot": changed - changed // 2}
    async with steady(contacts) as (bench, _clock):
        edit(bench, per_side["salesforce"], per_side["hubspot"], tag="Fresh")
        bench.reset_stats()
        outcome = await bench.engine.sync("bench")
        calls = bench.calls()
        paths = bench.calls_by_path()
    used = {side: sum(by_endpoint.values()) for side, by_endpoint in calls.items()}
    minimum = minimum_calls(per_side)
    scale = 1000 / changed
    return {
        "contacts": contacts,
        "changed": per_side,
        "calls": calls,
        "calls_by_path": paths,
        "used": used,
        "minimum": minimum,
        "used_per_1000": round(sum(used.values()) * scale, 1),
        "minimum_per_1000": round(sum(minimum.values()) * scale, 1),
        "overhead": round(sum(used.values()) / sum(minimum.values()) - 1, 3),
        "counts": dict(outcome.counts),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the frugality benchmark."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=5_000, help="contacts in the store (default 5,000)")
    cli.add_argument("--changed", type=int, default=1_000, help="linked contacts changed, half per side")
    args = cli.parse_args(argv)
    figures = asyncio.run(measure(args.contacts, args.changed))
    overhead = float(figures["overhead"])  # type: ignore[arg-type]
    report(
        "frugality",
        f"one cycle carrying {args.changed} changed contacts (half per side) over a store of {args.contacts}",
        figures,
        [
            ("API calls per 1,000 changed records", str(figures["used_per_1000"]), "", None),
            ("minimum possible per 1,000", str(figures["minimum_per_1000"]), "", None),
            ("calls above the minimum", f"{overhead:+.1%}", f"<= {TARGET_OVERHEAD:.0%}", overhead <= TARGET_OVERHEAD),
        ],
    )


if __name__ == "__main__":
    main()
