"""The loop step of a cycle: won deals into the revenue ledger, ledger into contact rollups, rollups into writes.

Runs inside the transaction of the deals page that changed, so a ledger entry, the rollups it moves and the
writes owed to the marketing system commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation

from closeloop.config.models import Entity
from closeloop.config.policies import LOOP, FromLoop, Rollup
from closeloop.engine.context import CycleContext
from closeloop.engine.fieldmerge import FieldState
from closeloop.engine.golden import GoldenState
from closeloop.engine.normalize import to_canonical
from closeloop.engine.owed import owed_items
from closeloop.loop import ledger as loop_ledger
from closeloop.loop.money import Rates, UnknownCurrency
from closeloop.loop.rollups import rollups_for
from closeloop.model import parse_utc
from closeloop.store import rows

STAGE, AMOUNT, CURRENCY, CLOSE_DATE = "stage", "amount", "currency", "close_date"
"""Canonical deal fields the loop reads (name them so in the deals mapping)."""


def _to_loop(entry: rows.LedgerEntry) -> loop_ledger.LedgerEntry:
    return loop_ledger.LedgerEntry(
        entry.deal_golden_id,
        loop_ledger.EntryKind(entry.kind),
        entry.amount,
        entry.currency,
        entry.amount_base or Decimal(0),
        entry.closed_at,
        entry.contacts,
    )


def to_store_entry(entry: loop_ledger.LedgerEntry, system: str, now: datetime) -> rows.LedgerEntry:
    """A loop ledger entry as the store keeps it, booked by ``system`` (a close left unknown is ``now``)."""
    return rows.LedgerEntry(
        entry.deal_id,
        rows.LedgerKind(entry.kind.value),
        entry.amount,
        entry.currency,
        entry.closed_at or now,
        entry.contacts,
        entry.amount_base,
        system,
    )


def deal_currency(ctx: CycleContext, values: Mapping[str, object]) -> str:
    """The deal's currency as its systems hold it; blank when the deals mapping names a currency none holds.

    Only a deals mapping that maps no currency at all (a single-currency org) books in the base currency:
    a mapped currency that is blank is never guessed, and the ledger quarantines the won deal for it.
    """
    mapping = ctx.connection.mapping(Entity.DEAL)
    if mapping is not None and CURRENCY not in mapping.fields:
        return ctx.loop.base_currency
    return str(values.get(CURRENCY) or "")


def deal_state(ctx: CycleContext, golden: GoldenState, contacts: Iterable[str]) -> loop_ledger.DealState:
    """What the ledger needs to know of a deal now."""
    values = golden.values()
    try:
        amount = Decimal(str(values[AMOUNT])) if values.get(AMOUNT) not in (None, "") else None
    except InvalidOperation:
        amount = None
    closed = values.get(CLOSE_DATE)
    return loop_ledger.DealState(
        deal_id=golden.id,
        won=values.get(STAGE) in ctx.won_stages,
        amount=amount,
        currency=deal_currency(ctx, values),
        closed_at=_moment(closed) if isinstance(closed, str) else None,
        contacts=tuple(contacts),
        deleted=golden.deleted,
    )


def _moment(text: str) -> datetime:
    return parse_utc(text if "T" in text else f"{text}T00:00:00Z")


def book_deals(ctx: CycleContext, system: str, deals: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Append the ledger entries the touched deals call for; return the contacts whose rollups move."""
    rates = Rates(ctx.loop.base_currency, dict(ctx.loop.rates))
    stored = ctx.store.get_goldens(list(deals))
    histories = ctx.store.ledger_for_deals(list(deals))
    uncredited = ctx.store.contacts_of_deals([deal_id for deal_id, contacts in deals.items() if not contacts])
    affected: set[str] = set()
    for deal_id, contacts in deals.items():
        found = stored.get(deal_id)
        if found is None:
            continue
        golden = GoldenState.decode(found)
        credited = contacts or tuple(c.contact_golden_id for c in uncredited[deal_id])
        history = [_to_loop(e) for e in histories.get(deal_id, [])]
        delta = loop_ledger.ledger_delta(history, deal_state(ctx, golden, credited), rates)
        if isinstance(delta, UnknownCurrency):
            ctx.count("quarantined", system)
            ctx.store.quarantine(
                ctx.name,
                system,
                "",
                Entity.DEAL,
                code="UNKNOWN_CURRENCY",
                reason=str(delta),
                golden_id=deal_id,
            )
            continue
        for entry in delta:
            ctx.store.append_ledger(to_store_entry(entry, system, ctx.clock()))
            ctx.count(f"ledger_{entry.kind.value}")
            affected.update(entry.contacts)
    return affected


def refresh_rollups(ctx: CycleContext, contacts: Iterable[str]) -> None:
    """Recompute the rollups of these contacts and queue the writes they owe the marketing system."""
    mapping = ctx.connection.mapping(Entity.CONTACT)
    ids = sorted(set(contacts))
    if not ids:
        return
    stored = ctx.store.get_goldens(ids)
    credited = ctx.store.ledger_for_contacts(ids)
    computed: dict[str, dict[str, str | None]] = {}
    changed: list[GoldenState] = []
    for contact_id in ids:
        rollup = rollups_for([contact_id], (_to_loop(e) for e in credited.get(contact_id, [])))
        values = computed[contact_id] = rollup[contact_id].as_canonical()
        found = stored.get(contact_id)
        if mapping is None or found is None:
            continue
        golden = GoldenState.decode(found)
        moved = False
        for name, spec in mapping.fields.items():
            if not isinstance(spec.policy, FromLoop) or spec.policy.rollup is Rollup.SLA_BREACHED_AT:
                continue  # the SLA stamp is kept by closeloop.engine.sla_stamp, not the ledger
            value = to_canonical(spec.type, values.get(spec.policy.rollup.value))
            if golden.fields.get(name, FieldState(None)).value != value:
                golden.fields[name] = FieldState(value, LOOP, ctx.clock())
                moved = True
        if moved:
            changed.append(golden)
    ctx.store.put_rollups(computed)
    if mapping is None or not changed:
        return
    ctx.store.put_goldens([golden.encode() for golden in changed])
    links = ctx.store.links_of_many([golden.id for golden in changed])
    ctx.store.enqueue(
        item for golden in changed for item in owed_items(ctx, mapping, golden, source=LOOP, links=links[golden.id])
    )
