"""A converged store in steady state: the bulk sync's writes lie outside the engine's lookback window."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from itertools import islice

from bench.harness import Bench, Population, ShiftedClock, bench_engine, converge, seed_sandboxes

PAST_LOOKBACK = timedelta(minutes=2)  # the bench config's lookback is 1 minute


@asynccontextmanager
async def steady(contacts: int) -> AsyncIterator[tuple[Bench, ShiftedClock]]:
    """Seed, converge, step sandbox time past the lookback and settle one edit per side, so the cursors move on."""
    clock = ShiftedClock()
    crm, mkt = seed_sandboxes(Population(contacts, contacts // 10), clock)
    async with bench_engine(crm, mkt) as bench:
        await converge(bench)
        clock.advance(PAST_LOOKBACK)
        edit(bench, 1, 1, deals=1)  # every cursor moves past the bulk writes
        await converge(bench)
        clock.advance(PAST_LOOKBACK)
        yield bench, clock


def edit(bench: Bench, crm_count: int, mkt_count: int, *, tag: str = "Edited", deals: int = 0) -> None:
    """Change linked contacts (and ``deals`` opportunities) straight in each sandbox, as users would."""
    for row in islice(_linked(bench, "crm", "Opportunity"), deals):
        bench.crm.table("Opportunity").update(row, {"Name": f"{tag} deal {row[-5:]}"})
    for row in islice(_linked(bench, "crm", "Contact"), crm_count):
        bench.crm.table("Contact").update(row, {"FirstName": f"{tag}{row[-5:]}"})
    for row in islice(_linked(bench, "marketing", "contacts"), mkt_count):
        bench.mkt.table("contacts").update(row, {"lastname": f"{tag}{row[-5:]}"})


def _linked(bench: Bench, system: str, obj: str) -> list[str]:
    """Native ids linked to a record on both sides, in a stable order."""
    with sqlite3.connect(bench.workdir / "state.db") as db:
        rows = db.execute(
            "SELECT l.native_id FROM links l WHERE l.system = ? AND l.object = ? AND EXISTS "
            "(SELECT 1 FROM links o WHERE o.golden_id = l.golden_id AND o.system != l.system) ORDER BY l.native_id",
            [system, obj],
        ).fetchall()
    return [r[0] for r in rows]
