"""Benchmark 2, API frugality: calls per 1,000 changed records, by endpoint, against the fewest calls possible.

The fewest possible include the lost-update guard: one batch read of each write batch's records just before the
batch is sent (``closeloop.engine.recheck``); the figure without it is printed too.
"""

from __future__ import annotations

import asyncio
from math import ceil

from bench.harness import parser, report
from bench.steady import edit, steady

TARGET_OVERHEAD = 0.05
MAX_PAGE = {"salesforce": 2000, "hubspot": 200}  # a SOQL batch; a HubSpot search page
MAX_WRITE = {"salesforce": 200, "hubspot": 100}  # sObject Collections; HubSpot batch endpoints
OBJECTS = {"salesforce": 3, "hubspot": 2}  # Contact, Lead, Opportunity; contacts, deals


OTHER = {"salesforce": "hubspot", "hubspot": "salesforce"}
FORM_BATCH = 100
"""Contacts per HubSpot contacts v1 batch read (the form submissions of each)."""


def minimum_calls(changed: dict[str, int], *, rechecked: bool = True) -> dict[str, int]:
    """Fewest calls to carry ``changed`` records of each side to the other: pages read plus batches written, plus
    (``rechecked``) the lost-update guard's one batch read of each write batch's records just before it is sent."""
    per_write = 2 if rechecked else 1
    return {
        side: (OBJECTS[side] - 1)
        + ceil(changed[side] / MAX_PAGE[side])
        + touch_reads(changed[side], side)
        + write_batches(changed, side) * per_write
        for side in changed
    }


def touch_reads(changed: int, side: str) -> int:
    """The touches the changed people bring: Salesforce's campaign-member stream, one query a cycle; HubSpot's
    form submissions, one contacts v1 batch read per 100 contacts of each page read (the only API listing them)."""
    if side == "salesforce":
        return 1
    pages = [min(MAX_PAGE[side], changed - start) for start in range(0, changed, MAX_PAGE[side])]
    return sum(ceil(size / FORM_BATCH) for size in pages)


def write_batches(changed: dict[str, int], side: str) -> int:
    """How many write batches carry the other side's changes to ``side``."""
    return ceil(changed[OTHER[side]] / MAX_WRITE[side])


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
    unguarded = minimum_calls(per_side, rechecked=False)
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
        "rechecks": {side: write_batches(per_side, side) for side in per_side},
        "rechecks_per_1000": round((sum(minimum.values()) - sum(unguarded.values())) * scale, 1),
        "minimum_unguarded_per_1000": round(sum(unguarded.values()) * scale, 1),
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
            ("of which re-reads before writes (no lost update)", str(figures["rechecks_per_1000"]), "", None),
            ("minimum without them, per 1,000", str(figures["minimum_unguarded_per_1000"]), "", None),
            ("calls above the minimum", f"{overhead:+.1%}", f"<= {TARGET_OVERHEAD:.0%}", overhead <= TARGET_OVERHEAD),
        ],
    )


if __name__ == "__main__":
    main()
