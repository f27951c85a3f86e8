"""Deals: contacts credited through associations, and associations written where a deal is synced to.

A deal's contacts are resolved through contact links (contacts sync first). A contact not linked yet is
remembered as a pending association and resolved in a later cycle: the deal waits for it, it is not dropped.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice

from closeloop.config.models import Entity, EntityMapping
from closeloop.engine.context import CycleContext
from closeloop.engine.golden import ASSOCIATED, associated, is_tombstone
from closeloop.model import Association, WriteResult
from closeloop.store.rows import PendingAssociation

CONTACT_PENDING = "contact"
"""Object marker of pending associations that wait for a contact's link in the target system."""


def _contact_objects(ctx: CycleContext, system: str) -> tuple[str, ...]:
    mapping = ctx.connection.mapping(Entity.CONTACT)
    return mapping.objects(system) if mapping else ()


async def fetch_associations(ctx: CycleContext, system: str, obj: str, deal_ids: Sequence[str]) -> list[Association]:
    """The deal → contact links of a page of deals, read from the vendor before the page's transaction."""
    if not deal_ids:
        return []
    return await ctx.connectors[system].associations(obj, list(deal_ids))


def store_associations(
    ctx: CycleContext, system: str, touched: Mapping[str, str], links: Sequence[Association]
) -> dict[str, tuple[str, ...]]:
    """Apply the association changes a page of deals reports; return deal golden id → credited contact golden ids.

    Associations merge like fields: what a system reports counts only where it differs from what closeloop last saw
    there or wrote there (the deal link's snapshot). A deal read back from the system closeloop created it in,
    before its associations were written there, reports none: that is not a change, and it credits nobody less.
    """
    reported: dict[str, set[str]] = {native: set() for native in touched}
    for link in links:
        if link.from_id in reported:
            reported[link.from_id].add(link.to_id)
    credited: dict[str, tuple[str, ...]] = {}
    for native_deal, now in reported.items():
        deal_golden = touched[native_deal]
        before = _seen(ctx, system, native_deal, deal_golden)
        resolved = {native: golden for native in now if (golden := _contact_link(ctx, system, native)) is not None}
        added = {resolved[native] for native in now - before if native in resolved}
        removed = {golden for native in before - now if (golden := _contact_link(ctx, system, native)) is not None}
        current = {credit.contact_golden_id for credit in ctx.store.deal_contacts(deal_golden)}
        if added or removed:
            current = (current | added) - removed
            ctx.store.set_deal_contacts(deal_golden, sorted(current), {})
        # Unresolved contacts stay out of the snapshot, so they count as added once they are linked.
        _remember_read(ctx, system, native_deal, deal_golden, sorted((before & now) | set(resolved)))
        credited[deal_golden] = tuple(sorted(current))
    return credited


def _seen(ctx: CycleContext, system: str, deal_native: str, deal_golden: str) -> set[str]:
    """The contacts (native ids) closeloop last saw on, or wrote to, this deal in ``system``."""
    for link in ctx.store.links_of(deal_golden):
        if link.system == system and link.native_id == deal_native:
            return set(associated(link.snapshot))
    return set()


def _remember_read(ctx: CycleContext, system: str, deal_native: str, deal_golden: str, contacts: list[str]) -> None:
    """The associations a system reports exist there already: never write them back to it."""
    for link in ctx.store.links_of(deal_golden):
        if link.system == system and link.native_id == deal_native:
            snapshot = {**link.snapshot, ASSOCIATED: json.dumps(sorted(set(contacts)))}
            ctx.store.put_link(system, link.object, deal_native, deal_golden, Entity.DEAL, snapshot=snapshot)


def _contact_link(ctx: CycleContext, system: str, native_id: str) -> str | None:
    for obj in _contact_objects(ctx, system):
        link = ctx.store.get_link(system, obj, native_id)
        if link is not None and not is_tombstone(link.snapshot):
            return link.golden_id
    return None


@dataclass
class _Owed:
    """The associations one deal owes one system."""

    deal_id: str
    obj: str
    deal_native: str
    done: set[str]
    wanted: list[str]
    waiting: list[str]


ASSOCIATION_DEALS = 2000
"""Deals whose owed associations are worked out, written and settled at a time: memory stays flat however many
deals a cycle touched, and each step still writes in the vendor's largest batches (at most one short batch more)."""


async def sync_associations(ctx: CycleContext, mapping: EntityMapping, system: str, deal_ids: Collection[str]) -> None:
    """Write the contact associations the deals (and those waiting from earlier cycles) owe ``system``, in the
    vendor's largest batches, ``ASSOCIATION_DEALS`` deals at a time; contacts not linked there yet wait."""
    waiting = sorted({p.deal_golden_id for p in ctx.store.pending_of_system(ctx.name, system)})
    deals = chain(deal_ids, (deal_id for deal_id in waiting if deal_id not in deal_ids))
    for chunk in _chunks(deals, ASSOCIATION_DEALS):
        await _associate(ctx, system, [o for deal_id in chunk if (o := _owed(ctx, mapping, system, deal_id))])


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of ``size`` items (the last one shorter), drawn lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def _associate(ctx: CycleContext, system: str, owed: Sequence[_Owed]) -> None:
    """Write what these deals owe, one call per native deal object, and settle each deal."""
    by_object: dict[str, list[_Owed]] = {}
    for item in owed:
        by_object.setdefault(item.obj, []).append(item)
    for obj, items in by_object.items():
        asked = [(item, contact) for item in items for contact in item.wanted]
        results = (
            await ctx.connectors[system].associate(obj, [Association(i.deal_native, c) for i, c in asked])
            if asked
            else []
        )
        outcome: dict[str, list[tuple[str, WriteResult]]] = {}
        for (item, contact), result in zip(asked, results, strict=True):
            outcome.setdefault(item.deal_id, []).append((contact, result))
        with ctx.store.transaction():
            for item in items:
                _settle(ctx, system, item, outcome.get(item.deal_id, []))
                _remember_waiting(ctx, system, item.deal_id, item.waiting)


def _owed(ctx: CycleContext, mapping: EntityMapping, system: str, deal_id: str) -> _Owed | None:
    """What one deal owes ``system``: its credited contacts linked there and not associated yet."""
    contact_objects = _contact_objects(ctx, system)
    deal_link = next(
        (
            link
            for link in ctx.store.links_of(deal_id)
            if link.system == system and link.object in mapping.objects(system)
        ),
        None,
    )
    if deal_link is None or is_tombstone(deal_link.snapshot):
        return None
    owed = _Owed(deal_id, deal_link.object, deal_link.native_id, set(associated(deal_link.snapshot)), [], [])
    for credit in ctx.store.deal_contacts(deal_id):
        native = next(
            (
                link.native_id
                for link in ctx.store.links_of(credit.contact_golden_id)
                if link.system == system and link.object in contact_objects
            ),
            None,
        )
        if native is None:
            owed.waiting.append(credit.contact_golden_id)
        elif native not in owed.done:
            owed.wanted.append(native)
    return owed


def _settle(ctx: CycleContext, system: str, item: _Owed, results: Sequence[tuple[str, WriteResult]]) -> None:
    """Remember the associations made on the deal's link; park the deal for each one refused."""
    made = [contact for contact, result in results if result.ok]
    link = ctx.store.get_link(system, item.obj, item.deal_native)
    if link is not None and made:
        snapshot = {**link.snapshot, ASSOCIATED: json.dumps(sorted(item.done | set(made)))}
        ctx.store.put_link(system, item.obj, item.deal_native, item.deal_id, Entity.DEAL, snapshot=snapshot)
    ctx.count("associated", system, len(made))
    for _, result in results:
        if result.ok:
            continue
        ctx.count("quarantined", system)
        ctx.store.quarantine(
            ctx.name,
            system,
            item.obj,
            Entity.DEAL,
            code=result.error.code if result.error else "",
            reason=result.error.message if result.error else "association failed",
            native_id=item.deal_native,
            golden_id=item.deal_id,
        )


def _remember_waiting(ctx: CycleContext, system: str, deal_id: str, waiting: list[str]) -> None:
    with ctx.store.transaction():
        ctx.store.drop_pending_associations(p for p in ctx.store.pending_of_deal(deal_id) if p.system == system)
        ctx.store.add_pending_associations(
            PendingAssociation(ctx.name, deal_id, system, CONTACT_PENDING, contact) for contact in waiting
        )
