"""Read the state store into a report input: contacts with their original source, the ledger and touches.

Canonical contact fields read when the contacts mapping names them (every one may be missing):

- ``lifecycle_stage``: the funnel stage (lead, mql, sql, opportunity, customer, as the mapping's values say);
- ``created_at``: when the contact was created, as its systems tell it (the lead-creation milestone); else when
  closeloop first saw it;
- ``became_lead_at`` ... ``became_customer_at``: when it reached each stage (``became_<stage>_at``);
- ``original_source``, ``original_source_detail``, ``utm_source``, ``utm_medium``, ``utm_campaign``,
  ``first_touch_at``: its original source as the systems tell it (see ``SOURCE_FIELDS``).

A contact credited with a currently won deal reached the customer stage at that deal's close.

The canonical deal field ``created_at``, when the deals mapping names it, is the deal-creation milestone; a deal
without one has no known creation time (its sales cycle and deal-creation touch are left out).

The kept original source of a contact is one row of the store's ``original_sources`` table (when it was
captured, and what it tells). A contact without one (captured before capture existed) gets the merge of its
golden fields and its systems' original-source touchpoints instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields as dataclass_fields
from datetime import datetime
from decimal import Decimal

from closeloop.config.feedback import Feedback, Verdict
from closeloop.loop.ledger import EntryKind, LedgerEntry, positions
from closeloop.loop.report import ContactFacts, FunnelStage, ReportInput
from closeloop.loop.source import OriginalSource, merge_original_source
from closeloop.loop.spend import SpendRow
from closeloop.loop.touchpoints import Touch, TouchKind, touch_from_touchpoint
from closeloop.model import Touchpoint, parse_utc
from closeloop.store import rows
from closeloop.store.api import StateStore

CONTACT = "contact"
KEPT_SYSTEM = "closeloop"
"""The touchpoint system of touches closeloop itself records (a merged-away contact's original source)."""
ORIGINAL_SOURCE = TouchKind.ORIGINAL_SOURCE.value
BATCH = 500

SOURCE_FIELDS = (
    "original_source",
    "original_source_detail",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "first_touch_at",
)
"""Canonical contact fields that tell an original source: type, detail, UTM values and first-touch time."""

LIFECYCLE_STAGE, CREATED_AT = "lifecycle_stage", "created_at"

_TOLD = tuple(f.name for f in dataclass_fields(OriginalSource) if f.name != "system")
"""What an original source tells, beyond which system reported it."""


def moment(value: rows.FieldValue) -> datetime | None:
    """A canonical date or datetime field value as an aware UTC datetime, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return parse_utc(text if "T" in text else f"{text}T00:00:00Z")
    except ValueError:
        return None


def source_from_fields(fields: rows.Fields, system: str | None) -> OriginalSource:
    """The original source that a contact's canonical fields tell, reported by ``system``."""
    text = {name: value for name, value in fields.items() if name in SOURCE_FIELDS and isinstance(value, str)}
    return OriginalSource(
        source_type=text.get("original_source"),
        detail=text.get("original_source_detail"),
        utm_source=text.get("utm_source"),
        utm_medium=text.get("utm_medium"),
        utm_campaign=text.get("utm_campaign"),
        first_touch_at=moment(text.get("first_touch_at")),
        system=system,
    )


def source_from_touch(touch: Touchpoint | rows.TouchpointRow, system: str) -> OriginalSource:
    """The original source that a system's original-source touchpoint tells."""
    return OriginalSource(
        source_type=touch.channel,
        detail=touch.detail,
        utm_source=touch.utm.get("utm_source"),
        utm_medium=touch.utm.get("utm_medium"),
        utm_campaign=touch.utm.get("utm_campaign"),
        first_touch_at=touch.occurred_at,
        system=system,
    )


def tells_nothing(source: OriginalSource) -> bool:
    """True when a source knows no more than which system reported it."""
    return all(getattr(source, name) is None for name in _TOLD)


def kept_row(contact_id: str, source: OriginalSource, captured_at: datetime) -> rows.KeptSource:
    """The row that stores a contact's kept original source."""
    return rows.KeptSource(
        contact_golden_id=contact_id,
        captured_at=captured_at,
        source_type=source.source_type,
        detail=source.detail,
        utm_source=source.utm_source,
        utm_medium=source.utm_medium,
        utm_campaign=source.utm_campaign,
        first_touch_at=source.first_touch_at,
        system=source.system,
    )


def kept_source(kept: rows.KeptSource | None) -> OriginalSource | None:
    """A contact's kept original source as the loop sees it, or None when none is kept."""
    if kept is None:
        return None
    return OriginalSource(
        kept.source_type,
        kept.detail,
        kept.utm_source,
        kept.utm_medium,
        kept.utm_campaign,
        kept.first_touch_at,
        kept.system,
    )


def observed_source(fields: rows.Fields, touchpoints: Iterable[rows.TouchpointRow]) -> OriginalSource | None:
    """What capture would keep from these fields and systems' original-source touchpoints, or None."""
    candidates = [source_from_fields(fields, None)]
    reported = [t for t in touchpoints if t.kind == ORIGINAL_SOURCE]
    candidates += [source_from_touch(t, t.system) for t in sorted(reported, key=lambda t: t.occurred_at)]
    kept: OriginalSource | None = None
    for candidate in candidates:
        if not tells_nothing(candidate):
            kept = merge_original_source(kept, candidate)
    return kept


def to_loop_entry(entry: rows.LedgerEntry) -> LedgerEntry:
    """A stored ledger entry as the loop's ledger entry."""
    return LedgerEntry(
        entry.deal_golden_id,
        EntryKind(entry.kind.value),
        entry.amount,
        entry.currency,
        entry.amount_base if entry.amount_base is not None else Decimal(0),
        entry.closed_at,
        entry.contacts,
    )


def first_won(ledger: Iterable[LedgerEntry]) -> dict[str, datetime]:
    """Each contact's earliest close among the deals currently won."""
    found: dict[str, datetime] = {}
    for pos in positions(ledger).values():
        for contact in pos.contacts:
            if pos.closed_at is not None and (contact not in found or pos.closed_at < found[contact]):
                found[contact] = pos.closed_at
    return found


def stage_dates(fields: rows.Fields, customer_since: datetime | None) -> dict[FunnelStage, datetime]:
    """When the contact reached each stage, from its ``became_<stage>_at`` fields and its first won deal."""
    dates = {s: at for s in FunnelStage if (at := moment(fields.get(f"became_{s.value}_at"))) is not None}
    if customer_since is not None and FunnelStage.CUSTOMER not in dates:
        dates[FunnelStage.CUSTOMER] = customer_since
    return dates


def contact_facts(
    golden: rows.Golden,
    touchpoints: Sequence[rows.TouchpointRow],
    customer_since: datetime | None,
    feedback: Feedback | None = None,
    kept: rows.KeptSource | None = None,
) -> ContactFacts:
    """What the report needs of one golden contact (``kept``: its kept original source, if any); its sales verdict
    when ``feedback`` is configured."""
    fields = golden.fields
    verdict = feedback.verdict(fields.get(feedback.status)) if feedback else None
    reason = fields.get(feedback.reason) if feedback and verdict is Verdict.REJECTED else None
    return ContactFacts(
        contact_id=golden.id,
        created_at=moment(fields.get(CREATED_AT)) or golden.created_at,
        lifecycle_stage=str(fields.get(LIFECYCLE_STAGE) or ""),
        original_source=kept_source(kept) or observed_source(fields, touchpoints),
        stage_dates=stage_dates(fields, customer_since),
        verdict=verdict,
        rejection_reason=reason if isinstance(reason, str) else None,
    )


def touches_of(contact_id: str, touchpoints: Iterable[rows.TouchpointRow]) -> list[Touch]:
    """A contact's stored touchpoints as touches; its original source joins later, from the contact's facts."""
    return [
        touch_from_touchpoint(
            contact_id, Touchpoint(t.native_id, t.occurred_at, t.kind, t.channel, t.campaign, t.utm, t.detail)
        )
        for t in touchpoints
        if t.kind != ORIGINAL_SOURCE
    ]


def golden_contacts(store: StateStore, batch: int = BATCH) -> Iterator[list[rows.Golden]]:
    """Every live golden contact, a batch at a time."""
    after = ""
    while found := store.goldens(CONTACT, after, batch):
        yield found
        after = found[-1].id


def deal_creations(store: StateStore, deal_ids: Sequence[str], batch: int = BATCH) -> dict[str, datetime]:
    """When each of these deals was created, from its golden ``created_at`` field, where known."""
    found: dict[str, datetime] = {}
    for start in range(0, len(deal_ids), batch):
        for golden in store.get_goldens(deal_ids[start : start + batch]).values():
            created = moment(golden.fields.get(CREATED_AT))
            if created is not None:
                found[golden.id] = created
    return found


def read_facts(
    store: StateStore,
    period_start: datetime,
    period_end: datetime,
    base_currency: str,
    spend: Sequence[SpendRow] = (),
    *,
    feedback: Feedback | None = None,
) -> ReportInput:
    """The report input for [period_start, period_end): every contact, the whole ledger, every touch; each
    contact's sales verdict when ``feedback`` (``loop.feedback``) is configured."""
    ledger = tuple(to_loop_entry(e) for e in store.ledger_entries())
    customers = first_won(ledger)
    contacts: list[ContactFacts] = []
    touches: list[Touch] = []
    for goldens in golden_contacts(store):
        ids = [g.id for g in goldens]
        stored, kept = store.touchpoints_of(ids), store.original_sources(ids)
        for golden in goldens:
            mine = stored.get(golden.id, [])
            contacts.append(contact_facts(golden, mine, customers.get(golden.id), feedback, kept.get(golden.id)))
            touches += touches_of(golden.id, mine)
    deals = deal_creations(store, sorted({e.deal_id for e in ledger}))
    return ReportInput(
        tuple(contacts),
        ledger,
        tuple(touches),
        period_start,
        period_end,
        base_currency.upper(),
        tuple(spend),
        deals,
        feedback=feedback is not None,
    )
