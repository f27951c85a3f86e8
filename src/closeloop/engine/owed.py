"""The writes a golden record owes each system: the fields whose golden value differs from that system's snapshot.

Owed writes are derived, never remembered: the outbox only records *that* a golden record owes a system a sync,
and the drain recomputes *what* from the golden record and the snapshot. A crash between a vendor accepting a
write and closeloop storing the result therefore re-sends at most the same values (an idempotent update or an
upsert by key), and queued items for one record collapse into one write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from closeloop.config.models import GOLDEN_ID, Connection, EntityMapping
from closeloop.config.policies import FromLoop
from closeloop.engine.context import CycleContext
from closeloop.engine.fieldmerge import MISSING, owed_values
from closeloop.engine.golden import GoldenState
from closeloop.engine.normalize import Canonical
from closeloop.engine.partner import partner_of
from closeloop.model import WriteOp
from closeloop.store.rows import Link, OutboxItem


@dataclass(frozen=True)
class OwedWrite:
    """One write a golden record owes one native record (or a create of one)."""

    system: str
    obj: str
    op: WriteOp
    values: dict[str, Canonical]
    native_id: str | None = None
    upsert_key: str | None = None
    upsert_value: Canonical = None
    partner_id: str | None = None
    """The other system's native id to write into the mapping's partner-id field (None: nothing owed there)."""


def owed_writes(
    ctx: CycleContext,
    mapping: EntityMapping,
    golden: GoldenState,
    system: str,
    source: str | None,
    known_links: Sequence[Link] | None = None,
    *,
    whether: bool = False,
) -> list[OwedWrite]:
    """What ``golden`` owes ``system`` (see ``writes_owed``); its links are read unless ``known_links`` are given."""
    every = ctx.store.links_of(golden.id) if known_links is None else known_links
    return writes_owed(mapping, golden, system, ctx.connection.other(system), source, every, whether=whether)


def writes_owed(
    mapping: EntityMapping,
    golden: GoldenState,
    system: str,
    other: str,
    source: str | None,
    links: Sequence[Link],
    *,
    whether: bool = False,
) -> list[OwedWrite]:
    """What ``golden`` owes ``system`` (``other`` is the system across), given all its ``links``: updates of its
    linked records, or a create the rules allow.

    With ``whether`` only *whether* a write is owed is worked out: each write's values stop at the first owed one
    (the outbox records that a write is owed; the drain works out what, once, just before sending it).
    """
    objects = mapping.objects(system)
    mine = [link for link in links if link.system == system and link.object in objects]
    if golden.deleted:
        return [w for w in (_loop_update(mapping, golden, link, whether) for link in mine) if w is not None]
    if any(link.deleted for link in mine):
        return []
    partner = partner_of(links, mapping, other) if mapping.partner_field(system) else None
    if mine:
        return [w for w in (_update(mapping, golden, link, partner, whether) for link in mine) if w is not None]
    if source is None or source == system or not mapping.may_create(source, system, golden.values()):
        return []
    return [w for w in [_create(mapping, golden, system, partner, whether)] if w is not None]


def _update(
    mapping: EntityMapping, golden: GoldenState, link: Link, partner: str | None, whether: bool = False
) -> OwedWrite | None:
    snapshot = link.snapshot
    values = {}
    for name, spec, _ in mapping.specs(link.system, link.object):
        owed, value = owed_values(spec, link.system, golden.fields.get(name), snapshot.get(name, MISSING))
        if owed:
            values[name] = value
            if whether:
                break
    owed_partner = partner if partner is not None and link.partner_id != partner else None
    if not values and owed_partner is None:
        return None
    return OwedWrite(
        link.system, link.object, WriteOp.UPDATE, values, native_id=link.native_id, partner_id=owed_partner
    )


def _loop_update(mapping: EntityMapping, golden: GoldenState, link: Link, whether: bool) -> OwedWrite | None:
    """What a retired golden record (merged away or deleted) still owes a copy that stands: closeloop's own loop
    fields only (rollups, stamps), so a merged-away contact's copy stops showing the revenue that moved to the
    winner. Nothing else is written to it, and nothing is created."""
    if link.deleted:
        return None
    values = {}
    for name, spec, _ in mapping.specs(link.system, link.object):
        if not isinstance(spec.policy, FromLoop):
            continue
        owed, value = owed_values(spec, link.system, golden.fields.get(name), link.snapshot.get(name, MISSING))
        if owed:
            values[name] = value
            if whether:
                break
    if not values:
        return None
    return OwedWrite(link.system, link.object, WriteOp.UPDATE, values, native_id=link.native_id)


def _create(
    mapping: EntityMapping, golden: GoldenState, system: str, partner: str | None, whether: bool = False
) -> OwedWrite | None:
    target = mapping.systems[system]
    values = {}
    keyed_by_field = target.upsert is not None and target.upsert.value != GOLDEN_ID
    for name, spec, _ in mapping.specs(system, target.create_as):
        owed, value = owed_values(spec, system, golden.fields.get(name), MISSING)
        if owed:
            values[name] = value
            if whether and not keyed_by_field:
                break
    if not values:
        return None
    if target.upsert is None:
        return OwedWrite(system, target.create_as, WriteOp.CREATE, values, partner_id=partner)
    key_value = golden.id if target.upsert.value == GOLDEN_ID else values.get(target.upsert.value)
    if not key_value:
        return None  # nothing to key an idempotent create on yet; it is owed once the key has a value
    return OwedWrite(
        system,
        target.create_as,
        WriteOp.UPSERT,
        values,
        upsert_key=target.upsert.key,
        upsert_value=key_value,
        partner_id=partner,
    )


def owed_items(
    ctx: CycleContext, mapping: EntityMapping, golden: GoldenState, *, source: str | None, links: Sequence[Link]
) -> list[OutboxItem]:
    """The outbox items for every system ``golden`` owes a write, given all of its ``links``."""
    return items_owed(ctx.connection, mapping, golden, source, links)


def items_owed(
    connection: Connection,
    mapping: EntityMapping,
    golden: GoldenState,
    source: str | None,
    links: Sequence[Link],
    systems: Sequence[str] | None = None,
) -> list[OutboxItem]:
    """The outbox items for every system of ``connection`` (or of ``systems``) that ``golden`` owes a write, given
    all its ``links``."""
    return [
        OutboxItem(
            connection.name,
            write.system,
            write.obj,
            mapping.entity,
            golden.id,
            write.op,
            native_id=write.native_id,
            upsert_key=write.upsert_key,
        )
        for system in (connection.systems if systems is None else systems)
        for write in writes_owed(mapping, golden, system, connection.other(system), source, links, whether=True)
    ]


def queue_owed(ctx: CycleContext, mapping: EntityMapping, golden: GoldenState, *, source: str | None) -> int:
    """Queue an outbox item for every system ``golden`` owes a write; return how many."""
    items = owed_items(ctx, mapping, golden, source=source, links=ctx.store.links_of(golden.id))
    if items:
        ctx.store.enqueue(items)
    return len(items)
