"""The rows the state store hands out and takes in: small frozen dataclasses, never raw dicts.

Canonical field values are ``str | bool | None``: decimals and datetimes are already strings when they
reach the store, so the JSON columns hold plain JSON. Timestamps are aware UTC datetimes on this side
of the border.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from closeloop.model import JSONValue, WriteOp

FieldValue = str | bool | None
"""A canonical field value as the store keeps it."""

Fields = Mapping[str, FieldValue]
"""Canonical field name -> canonical value."""

Provenance = Mapping[str, Sequence[str | None]]
"""Canonical field name -> [the system that set its value, that system's modified time then (ISO 8601)]."""


class QuarantineStatus(enum.StrEnum):
    """Where a quarantined record stands: waiting for an admin, queued for retry, ignored, or cleared."""

    OPEN = "open"
    RETRY = "retry"
    IGNORED = "ignored"
    RESOLVED = "resolved"


class RunStatus(enum.StrEnum):
    """How a sync run ended (or that it has not yet)."""

    RUNNING = "running"
    OK = "ok"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class LedgerKind(enum.StrEnum):
    """What a revenue-ledger entry records."""

    WON = "won"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class Golden:
    """A golden record: the last synced canonical value of every field of one entity."""

    id: str
    entity: str
    fields: Fields
    created_at: datetime
    updated_at: datetime
    deleted: bool = False
    provenance: Provenance = field(default_factory=dict)
    """Who set each field and that system's modified time then: {field: [system, modified_at]}."""


@dataclass(frozen=True, slots=True)
class Link:
    """One native record of one system tied to a golden record, with what was last seen from it."""

    system: str
    object: str
    native_id: str
    golden_id: str
    entity: str
    last_modified_at: datetime | None
    snapshot: Fields
    linked_at: datetime
    deleted: bool = False
    """The native record is gone (a tombstone): never written to, never re-created, never matched again."""
    partner_id: str | None = None
    """The other system's id the native record's partner-id field holds ("" blank; None: no such field mapped)."""
    associated: tuple[str, ...] = ()
    """Of a deal's link: the contact native ids already associated with the deal in its system, sorted."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A write owed to a system, as the engine enqueues it."""

    connection: str
    system: str
    object: str
    entity: str
    golden_id: str
    op: WriteOp
    native_id: str | None = None
    upsert_key: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A queued write as stored, with its delivery state."""

    id: int
    item: OutboxItem
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """A record quarantined after a permanent error, with the vendor's message and how often it failed."""

    id: int
    connection: str
    system: str
    object: str
    entity: str
    native_id: str | None
    golden_id: str | None
    code: str
    reason: str
    payload: Mapping[str, JSONValue]
    attempts: int
    status: QuarantineStatus
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class Run:
    """One sync run of one connection, with its counts and API calls per system."""

    id: int
    connection: str
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    counts: Mapping[str, int]
    api_calls: Mapping[str, int]
    error: str | None
    failure: str | None = None
    """The kind of failure of a failed run (auth, unreachable, bug...), else None."""
    replica: str | None = None
    """The replica that ran it (several replicas on one PostgreSQL store), else None."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One revenue-ledger entry; ``id`` and ``recorded_at`` are set by the store when appended."""

    deal_golden_id: str
    kind: LedgerKind
    amount: Decimal
    currency: str
    closed_at: datetime
    contacts: tuple[str, ...] = ()
    amount_base: Decimal | None = None
    source_system: str | None = None
    id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TouchpointRow:
    """A marketing touchpoint credited to one contact golden record; ``id`` is set by the store."""

    contact_golden_id: str
    system: str
    native_id: str
    occurred_at: datetime
    kind: str
    channel: str | None = None
    campaign: str | None = None
    utm: Mapping[str, str] = field(default_factory=dict)
    detail: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class KeptSource:
    """The original source kept for one contact (write-once, see ``closeloop.engine.source``)."""

    contact_golden_id: str
    captured_at: datetime
    source_type: str | None = None
    detail: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    first_touch_at: datetime | None = None
    system: str | None = None
    """The system that reported the source first."""


@dataclass(frozen=True, slots=True)
class Rollup:
    """The closed-loop values computed for one contact (revenue, won deals, first/last won)."""

    contact_golden_id: str
    values: Fields
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DealContact:
    """A deal credited to a contact, both as golden records."""

    deal_golden_id: str
    contact_golden_id: str
    role: str | None = None


@dataclass(frozen=True, slots=True)
class PendingAssociation:
    """A deal-to-contact link seen in a system whose contact is not linked to a golden record yet."""

    connection: str
    deal_golden_id: str
    system: str
    object: str
    contact_native_id: str
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Parked:
    """A record quarantined while its page was decided, as ``StateStore.quarantine`` takes it."""

    connection: str
    system: str
    object: str
    entity: str
    code: str
    reason: str
    native_id: str | None = None
    golden_id: str | None = None
    payload: Mapping[str, JSONValue] = field(default_factory=dict)
    modified_at: datetime | None = None
    """The modified time of the version quarantined."""


@dataclass
class PageDelta:
    """What applying one page (or settling one batch of writes) changes, as the store applies it: set-based, in
    the caller's transaction (``StateStore.apply_delta``).

    The engine works a delta out from what it loaded, without writing; the store writes it with one statement per
    table. Links are written once, as the page left them; golden records made in the page (``new_goldens``) have
    no match keys to delete.
    """

    goldens: list[tuple[str, str, Fields, Provenance]] = field(default_factory=list)
    """(id, entity, fields, provenance) of every golden record created or changed."""
    deleted_goldens: list[str] = field(default_factory=list)
    """Golden records flagged deleted (they stay, so a merged-away record is never resurrected)."""
    unlinked: list[tuple[str, str, str]] = field(default_factory=list)
    """(system, object, native id) of links removed."""
    links: list[Link] = field(default_factory=list)
    """Links created or replaced, every column as given."""
    keys: dict[str, list[tuple[str, Mapping[str, str]]]] = field(default_factory=dict)
    """Entity -> (golden id, its match keys) replacing the stored ones."""
    new_goldens: frozenset[str] = frozenset()
    """Golden records made by this delta (no keys stored yet)."""
    resolved: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    """(connection, system, object) -> record keys of parked records that synced."""
    outbox: list[OutboxItem] = field(default_factory=list)
    """Writes owed to other systems."""
    parked: list[Parked] = field(default_factory=list)
    """Records quarantined (each bumps its live entry, if it has one)."""
    done: list[int] = field(default_factory=list)
    """Outbox items delivered (or settled)."""
