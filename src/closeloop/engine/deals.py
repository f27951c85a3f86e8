"""Deals: contacts credited through associations, and associations written where a deal is synced to.

A deal's contacts are resolved through contact links (contacts sync first). A contact not linked yet is
remembered as a pending association and resolved in a later cycle: the deal waits for it, it is not dropped.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain, islice

from closeloop.config.models import Entity, EntityMapping
from closeloop.engine.context import CycleContext
from closeloop.model import Association, WriteResult
from closeloop.store.rows import Link, PendingAssociation

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
    The whole page is read and written in a handful of statements, whatever its size.
    """
    reported: dict[str, set[str]] = {native: set() for native in touched}
    for link in links:
        if link.from_id in reported:
            reported[link.from_id].add(link.to_id)
    deal_links = _deal_links(ctx, system, touched)
    seen = {native: set(link.associated) for native, link in deal_links.items()}
    contacts = _contact_links(ctx, system, chain.from_iterable(chain(reported.values(), seen.values())))
    stored = ctx.store.contacts_of_deals(list(touched.values()))
    credited: dict[str, tuple[str, ...]] = {}
    replaced: dict[str, list[str]] = {}
    remembered: list[Link] = []
    for native_deal, now in reported.items():
        deal_golden = touched[native_deal]
        before = seen.get(native_deal, set())
        resolved = {native: contacts[native] for native in now if native in contacts}
        added = {resolved[native] for native in now - before if native in resolved}
        removed = {contacts[native] for native in before - now if native in contacts}
        current = {credit.contact_golden_id for credit in stored[deal_golden]}
        if added or removed:
            current = (current | added) - removed
            replaced[deal_golden] = sorted(current)
        credited[deal_golden] = tuple(sorted(current))
        # Unresolved contacts stay out of the snapshot, so they count as added once they are linked: what the
        # system reports exists there already, and is never written back to it.
        if (deal_link := deal_links.get(native_deal)) is not None:
            kept = sorted((before & now) | set(resolved))
            remembered.append(replace(deal_link, associated=tuple(kept)))
    ctx.store.replace_deal_contacts(replaced)
    ctx.store.put_links(remembered)
    return credited


def _deal_links(ctx: CycleContext, system: str, touched: Mapping[str, str]) -> dict[str, Link]:
    """The links in ``system`` of a page's deals, by native id."""
    found: dict[str, Link] = {}
    for golden_id, links in ctx.store.links_of_many(list(touched.values())).items():
        for link in links:
            if link.system == system and touched.get(link.native_id) == golden_id:
                found.setdefault(link.native_id, link)
    return found


def _contact_links(ctx: CycleContext, system: str, natives: Iterable[str]) -> dict[str, str]:
    """Native contact id → golden id, for the contacts linked in ``system`` and not deleted there."""
    wanted = list(dict.fromkeys(natives))
    found: dict[str, str] = {}
    for obj in _contact_objects(ctx, system):
        for native, link in ctx.store.find_links(system, obj, wanted).items():
            if native not in found and not link.deleted:
                found[native] = link.golden_id
    return found


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
        await _associate(ctx, system, _owed(ctx, mapping, system, chunk))


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
            _settle(ctx, system, obj, items, outcome)
            ctx.store.replace_pending_associations(
                system,
                [item.deal_id for item in items],
                (
                    PendingAssociation(ctx.name, item.deal_id, system, CONTACT_PENDING, contact)
                    for item in items
                    for contact in item.waiting
                ),
            )


def _owed(ctx: CycleContext, mapping: EntityMapping, system: str, deal_ids: Sequence[str]) -> list[_Owed]:
    """What each deal owes ``system``: its credited contacts linked there and not associated yet."""
    contact_objects = _contact_objects(ctx, system)
    deal_objects = mapping.objects(system)
    credits = ctx.store.contacts_of_deals(deal_ids)
    deal_links = ctx.store.links_of_many(deal_ids)
    contact_links = ctx.store.links_of_many(
        list(dict.fromkeys(c.contact_golden_id for deal in credits.values() for c in deal))
    )
    owed: list[_Owed] = []
    for deal_id in deal_ids:
        deal_link = next((k for k in deal_links[deal_id] if k.system == system and k.object in deal_objects), None)
        if deal_link is None or deal_link.deleted:
            continue
        item = _Owed(deal_id, deal_link.object, deal_link.native_id, set(deal_link.associated), [], [])
        for credit in credits[deal_id]:
            native = next(
                (
                    link.native_id
                    for link in contact_links[credit.contact_golden_id]
                    if link.system == system and link.object in contact_objects
                ),
                None,
            )
            if native is None:
                item.waiting.append(credit.contact_golden_id)
            elif native not in item.done:
                item.wanted.append(native)
        owed.append(item)
    return owed


def _settle(
    ctx: CycleContext,
    system: str,
    obj: str,
    items: Sequence[_Owed],
    outcome: Mapping[str, list[tuple[str, WriteResult]]],
) -> None:
    """Remember the associations made on each deal's link; quarantine a deal for each one refused."""
    links = ctx.store.find_links(system, obj, [item.deal_native for item in items])
    remembered: list[Link] = []
    for item in items:
        results = outcome.get(item.deal_id, [])
        made = [contact for contact, result in results if result.ok]
        link = links.get(item.deal_native)
        if link is not None and made:
            remembered.append(replace(link, associated=tuple(sorted(item.done | set(made)))))
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
    ctx.store.put_links(remembered)
