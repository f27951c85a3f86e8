"""Merges of contacts: what the merged-away contact was credited with moves to the contact it merged into.

Runs inside the transaction of the contacts page that reported the merge, right after the page is applied, so
the moved credits and the recomputed rollups of both contacts commit with the merge itself; the rollups are
written back in the same cycle. The ledger stays append-only: a standing win that credited the loser gets a
reversal and a new won entry crediting the winner in its place (same amounts, same close). The loser's deal
associations, its touchpoints and its original source (as a touch of kind ``merged_source``) move too.
"""

from __future__ import annotations

from collections.abc import Mapping

from closeloop.engine.context import CycleContext
from closeloop.engine.revenue import to_store_entry
from closeloop.loop.facts import KEPT_SYSTEM, contact_facts, to_loop_entry
from closeloop.loop.ledger import moved_to
from closeloop.loop.report import source_touch
from closeloop.loop.touchpoints import TouchKind
from closeloop.store.rows import TouchpointRow


def final_winner(merged: Mapping[str, str], loser: str) -> str:
    """The contact a merged-away contact ends up in, following merges of merges (A into B, then B into C)."""
    winner, seen = merged[loser], {loser}
    while winner in merged and winner not in seen:
        seen.add(winner)
        winner = merged[winner]
    return winner


def move_merged(ctx: CycleContext, system: str, merged: Mapping[str, str]) -> set[str]:
    """Move each loser's credits, associations and touches to its winner; return the contacts whose rollups move."""
    affected: set[str] = set()
    for loser in merged:
        winner = final_winner(merged, loser)
        if winner == loser:  # merged back into itself through others: nothing moves
            continue
        _move_touches(ctx, loser, winner)
        if _move_deals(ctx, system, loser, winner):
            affected |= {loser, winner}
    return affected


def _move_deals(ctx: CycleContext, system: str, loser: str, winner: str) -> bool:
    """Append the entries that move the loser's standing wins; re-credit its deal associations. True if any moved."""
    store = ctx.store
    associated = [credit.deal_golden_id for credit in store.deals_of_contact(loser)]
    booked = list(store.ledger_for_contacts([loser]).get(loser, []))
    deals = sorted({*associated, *(entry.deal_golden_id for entry in booked)})
    credits = store.contacts_of_deals(associated)
    store.replace_deal_contacts(
        {deal: [winner if c.contact_golden_id == loser else c.contact_golden_id for c in credits[deal]]
         for deal in associated}
    )  # fmt: skip
    moved = 0
    for history in store.ledger_for_deals(deals).values():
        entries = moved_to([to_loop_entry(e) for e in history], loser, winner)
        for entry in entries:
            store.append_ledger(to_store_entry(entry, system, ctx.clock()))
            ctx.count(f"ledger_{entry.kind.value}")
        moved += bool(entries)
    if moved:
        ctx.count("credits_moved", system, moved)
    return moved > 0


def _move_touches(ctx: CycleContext, loser: str, winner: str) -> None:
    """The loser's touchpoints become the winner's; its original source joins them as a touch at its time."""
    store = ctx.store
    golden = store.get_golden(loser)
    stored = store.touchpoints_of([loser]).get(loser, [])
    store.move_touchpoints(loser, winner)
    if golden is None:
        return
    touch = source_touch(contact_facts(golden, stored, None, kept=store.original_sources([loser]).get(loser)))
    if touch is None:
        return
    row = TouchpointRow(
        winner, KEPT_SYSTEM, loser, touch.at, TouchKind.MERGED_SOURCE.value, touch.channel.value, touch.campaign,
        dict(touch.utm),
    )  # fmt: skip
    store.add_touchpoints([row])
