"""Merges a vendor reports as plain deletions: the survivor, told from what closeloop last saw.

Some vendors delete a merged-away contact like any other and never name the contact it merged into (a connector
offering :class:`~closeloop.connector.UnnamedMerges`). For each such deletion of a contact closeloop had linked,
before the page is applied:

1. **Its deals moved.** The deals closeloop last saw naming the deleted contact in that system are read again. Those
   that no longer name it, and now name a contact they did not name before, were moved by a merge: when exactly one
   contact is new on them, the deleted contact was merged into it. More than one new contact is no merge anyone can
   tell: a plain deletion.
2. **Its match key is held by one other.** When no deal moved (it had none, or they name no new contact), the
   contacts of the same object that hold the deleted contact's match key value (its email) are searched: when
   exactly one does, the deleted contact was merged into it.
3. Otherwise it is a plain deletion: a merge that moved no deal, of two contacts that share no match key, cannot be
   told from one, and the mapping's ``on_delete`` applies.

A deletion told to be a merge is handed on with ``merged_into`` set, as vendors that name the survivor hand it, so
the loser's credits, touches and rollups move in the same cycle (:mod:`closeloop.engine.merges`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from closeloop.config.models import Entity
from closeloop.connector import UnnamedMerges
from closeloop.engine.context import CycleContext
from closeloop.engine.golden import GoldenState
from closeloop.engine.reconcile import PageApplier
from closeloop.model import NativeRecord

DealKey = tuple[str, str]
"""A deal in the deleted contact's system: (native object, native id)."""


@dataclass(frozen=True)
class Evidence:
    """What tells a merge from a deletion, for one deleted contact."""

    before: Mapping[DealKey, frozenset[str]]
    """deal -> the contact native ids closeloop last saw on it, for the deals that named the loser."""
    now: Mapping[DealKey, frozenset[str]]
    """deal -> the contact native ids the vendor names on it now."""
    same_key: frozenset[str] = frozenset()
    """The live contacts of the loser's object holding its match key value (searched only when no deal moved)."""


def moved_to(loser: str, evidence: Evidence) -> frozenset[str]:
    """The contacts new on the loser's deals that no longer name it (rule 1's candidates)."""
    found: set[str] = set()
    for deal, before in evidence.before.items():
        now = evidence.now.get(deal, frozenset())
        if loser not in now:
            found |= now - before
    return frozenset(found)


def survivor(loser: str, evidence: Evidence) -> str | None:
    """The contact ``loser`` was merged into, or None for a plain deletion (the module's rules, in order)."""
    moved = moved_to(loser, evidence)
    if moved:
        return next(iter(moved)) if len(moved) == 1 else None
    holders = evidence.same_key - {loser}
    return next(iter(holders)) if len(holders) == 1 else None


async def name_survivors(
    ctx: CycleContext, applier: PageApplier, records: Sequence[NativeRecord], news: Sequence[NativeRecord]
) -> list[NativeRecord]:
    """The page's records, each new deletion that was a merge (by the rules above) carrying its survivor."""
    system, obj, mapping = applier.system, applier.obj, applier.mapping
    connector = ctx.connectors[system]
    if (
        mapping.entity != Entity.CONTACT
        or not isinstance(connector, UnnamedMerges)
        or not connector.merges_unnamed(obj)
    ):
        return list(records)
    gone = [r.id for r in news if r.deleted and not r.merged_into]
    links = ctx.store.find_links(system, obj, gone) if gone else {}
    losers = {native: link.golden_id for native, link in links.items() if not link.deleted}
    if not losers:
        return list(records)
    before = _deals_last_seen(ctx, system, losers)
    now = await _deals_now(ctx, system, before)
    evidence = {loser: Evidence(before[loser], now) for loser in losers}
    unmoved = {loser: losers[loser] for loser, found in evidence.items() if not moved_to(loser, found)}
    for loser, holders in (await _same_key(ctx, applier, unmoved)).items():
        evidence[loser] = replace(evidence[loser], same_key=holders)
    winners: dict[str, str] = {}
    for loser, found in evidence.items():
        winner = survivor(loser, found)
        if winner is not None:
            winners[loser] = winner
            ctx.count("merge_inferred", system)
    return [replace(r, merged_into=winners[r.id]) if r.id in winners else r for r in records]


def _deals_last_seen(
    ctx: CycleContext, system: str, losers: Mapping[str, str]
) -> dict[str, dict[DealKey, frozenset[str]]]:
    """Per loser: its deals in ``system`` (by deal object and native id) with the contacts last seen on them."""
    deals = ctx.connection.mapping(Entity.DEAL)
    objects = set(deals.objects(system)) if deals else set()
    found: dict[str, dict[DealKey, frozenset[str]]] = {loser: {} for loser in losers}
    for loser, golden_id in losers.items():
        credited = [credit.deal_golden_id for credit in ctx.store.deals_of_contact(golden_id)]
        for links in ctx.store.links_of_many(credited).values():
            for link in links:
                seen = frozenset(link.associated)
                if link.system == system and link.object in objects and not link.deleted and loser in seen:
                    found[loser][(link.object, link.native_id)] = seen
    return found


async def _deals_now(
    ctx: CycleContext, system: str, before: Mapping[str, Mapping[DealKey, frozenset[str]]]
) -> dict[DealKey, frozenset[str]]:
    """The contacts the vendor names now on every deal of ``before``, one associations read per deal object."""
    keys = {key for per_loser in before.values() for key in per_loser}
    by_object: dict[str, list[str]] = {}
    for obj, native in sorted(keys):
        by_object.setdefault(obj, []).append(native)
    now: dict[DealKey, set[str]] = {key: set() for key in keys}
    for obj, ids in by_object.items():
        for link in await ctx.connectors[system].associations(obj, ids):
            now.setdefault((obj, link.from_id), set()).add(link.to_id)
    return {key: frozenset(contacts) for key, contacts in now.items()}


async def _same_key(ctx: CycleContext, applier: PageApplier, losers: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Per loser (native id -> golden id): the live records of its object holding its first match key value, found
    with one search per native key field (the connector batches the values as its vendor allows)."""
    if not losers:
        return {}
    mapping, system, obj = applier.mapping, applier.system, applier.obj
    stored = ctx.store.get_goldens(sorted(set(losers.values())))
    wanted: dict[str, tuple[str, str]] = {}
    for loser, golden_id in losers.items():
        found = stored.get(golden_id)
        if found is None:
            continue
        golden = GoldenState.decode(found)
        for key in mapping.match:
            value = golden.fields[key].value if key in golden.fields else None
            native = mapping.native_field(system, obj, key)
            if isinstance(value, str) and value and native:
                wanted[loser] = (native, value)
                break
    by_field: dict[str, set[str]] = {}
    for native, value in wanted.values():
        by_field.setdefault(native, set()).add(value)
    held: dict[tuple[str, str], set[str]] = {}
    for native, values in by_field.items():
        for record in await ctx.connectors[system].search(obj, native, sorted(values)):
            value = record.fields.get(native)
            if isinstance(value, str) and not (record.deleted or record.merged_into):
                held.setdefault((native, value.casefold()), set()).add(record.id)
    return {loser: frozenset(held.get((native, value.casefold()), ())) for loser, (native, value) in wanted.items()}
