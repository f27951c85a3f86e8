"""Canonical types shared by every part of closeloop: records, cursors, writes and their results.

All types are small, immutable and precise: aware UTC datetimes, ``Decimal`` for money. Native field values
(what a vendor returned) stay JSON-like (str, int, float, bool, None, list, dict) until mapping turns them into
canonical values.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

JSONValue = Any
"""A value as a vendor's JSON carries it (str, int, float, bool, None, list, dict)."""


def utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime; a naive datetime is refused, never guessed."""
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp with an offset (``Z`` included) into aware UTC."""
    try:  # the common case (the store's own stamps, most vendors'): Python reads it as is, ``Z`` included
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is UTC:
        return moment
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    # Some vendors write offsets without a colon (+0000).
    if len(cleaned) >= 5 and cleaned[-5] in "+-" and cleaned[-4:].isdigit() and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    return utc(datetime.fromisoformat(cleaned))


def iso_utc(moment: datetime, *, millis: bool = True) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix."""
    text = utc(moment).isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


CursorKey = tuple[datetime, int, str]
"""A position in (modified_at, id) order, as :func:`position_key` makes it: comparable with ``<``."""


def position_key(modified_at: datetime, record_id: str) -> CursorKey:
    """The sort key of (modified_at, id): time first, then ids the way vendors sort them.

    Ids compare shorter first, then as text: numeric ids in number order, fixed-width ids
    in text order. No id (``""``) lies before every id of its moment.
    """
    return (modified_at, len(record_id), record_id)


def record_key(record: NativeRecord) -> CursorKey:
    """A record's place in its change stream: sort a page with ``key=record_key``."""
    record_id = record.id
    return (record.modified_at, len(record_id), record_id)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a system's change stream: (modified_at, id), never a bare time.

    The one definition of the boundary, shared by the engine, every connector and the conformance kit: a stream
    read from a cursor hands out the records strictly after it in :func:`position_key` order. With an id, the
    records of its moment up to and including that id were read; without one (``""``, as a cursor looking back
    has), none of its moment was, so they all come again. "No id" stays ``""`` rather than None: connectors
    (third-party ones too) format ``since.id`` into queries and compare it as text.
    """

    modified_at: datetime
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "modified_at", utc(self.modified_at))

    @property
    def key(self) -> CursorKey:
        """This cursor's place in (modified_at, id) order, comparable with :func:`record_key`."""
        return position_key(self.modified_at, self.id)

    def __lt__(self, other: Cursor) -> bool:
        return self.key < other.key

    def __le__(self, other: Cursor) -> bool:
        return self.key <= other.key

    def __gt__(self, other: Cursor) -> bool:
        return self.key > other.key

    def __ge__(self, other: Cursor) -> bool:
        return self.key >= other.key

    def precedes(self, record: NativeRecord) -> bool:
        """True when ``record`` lies strictly after this cursor: a read from here hands it out."""
        return record_key(record) > self.key

    def lookback(self, window: timedelta) -> Cursor:
        """Where a read that looks ``window`` back starts: every record of that earlier moment on comes again.

        A zero window is the cursor itself, id included, so nothing is read twice.
        """
        return Cursor(self.modified_at - window) if window > timedelta(0) else self

    def columns(self) -> tuple[str, str]:
        """The store's form: the time as fixed-width RFC 3339 UTC to the microsecond (text order is time order),
        and the id, ``""`` for none. Every version of the store wrote cursors this way."""
        return _stamp(self.modified_at), self.id

    @classmethod
    def from_columns(cls, modified_at: str, record_id: str | None) -> Cursor:
        """A cursor as the store keeps it (:meth:`columns`); any RFC 3339 time is read, and NULL as no id."""
        return cls(parse_utc(modified_at), record_id or "")


def records_after(since: Cursor | None, records: Iterable[NativeRecord]) -> list[NativeRecord]:
    """The records strictly after ``since`` (all of them with no cursor), in the order given."""
    if since is None:
        return list(records)
    floor = since.key
    return [r for r in records if record_key(r) > floor]


def advance(cursor: Cursor | None, records: Sequence[NativeRecord]) -> Cursor | None:
    """The cursor past a page: its last record's position, unless the cursor already lies at or past it."""
    if not records:
        return cursor
    last = records[-1].position
    return last if cursor is None or last > cursor else cursor


def _stamp(moment: datetime) -> str:
    return utc(moment).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class NativeRecord:
    """One record as a system reports it, before mapping."""

    id: str
    modified_at: datetime
    fields: Mapping[str, JSONValue] = field(default_factory=dict)
    deleted: bool = False
    merged_into: str | None = None
    field_times: Mapping[str, datetime] = field(default_factory=dict)
    """When each native field last changed, where the vendor's read tells it (a property history); fields left
    out changed at ``modified_at`` at the latest."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "modified_at", utc(self.modified_at))

    @property
    def position(self) -> Cursor:
        """The cursor that points at this record."""
        return Cursor(self.modified_at, self.id)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a change stream, ordered by (modified_at, id)."""

    records: tuple[NativeRecord, ...]

    @property
    def last(self) -> Cursor | None:
        """The position of the page's last record, or None for an empty page."""
        return self.records[-1].position if self.records else None


class FieldType(enum.StrEnum):
    """The types closeloop normalizes values to; vendor types map onto these in each connector."""

    STRING = "string"
    EMAIL = "email"
    PHONE = "phone"
    NUMBER = "number"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    PICKLIST = "picklist"
    REFERENCE = "reference"
    ID = "id"
    OWNER = "owner"
    """A person who owns a record (salesperson), canonically their email; see ``closeloop.engine.owners``."""


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field of a vendor object, from the vendor's describe/properties API."""

    name: str
    type: FieldType
    read_only: bool = False
    picklist: tuple[str, ...] | None = None
    restricted: bool = False
    label: str = ""


@dataclass(frozen=True, slots=True)
class OwnedField:
    """A field closeloop owns in a vendor object (partner id, upsert key, rollup), created by the setup step."""

    name: str
    type: FieldType
    label: str
    unique: bool = False
    """An external-id style key: unique values, usable to look records up and upsert by."""


@dataclass(frozen=True, slots=True)
class StageInfo:
    """One deal/opportunity stage and what the vendor's metadata says about it."""

    value: str
    label: str
    is_closed: bool
    is_won: bool
    probability: float | None = None
    pipeline: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    """What ``describe`` reports for one native object."""

    object: str
    fields: Mapping[str, FieldInfo]
    stages: tuple[StageInfo, ...] = ()

    def won_stages(self) -> frozenset[str]:
        """The stage values the vendor marks as closed and won."""
        return frozenset(s.value for s in self.stages if s.is_won)


class WriteOp(enum.StrEnum):
    """What a write asks of a system."""

    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One record to write. ``ref`` is the caller's correlation id, echoed in the result.

    UPDATE and DELETE need ``native_id``; UPSERT needs ``upsert_key`` (a native field name whose value is in
    ``fields``); CREATE needs neither.
    """

    ref: str
    op: WriteOp
    fields: Mapping[str, JSONValue] = field(default_factory=dict)
    native_id: str | None = None
    upsert_key: str | None = None
    unmodified_since: datetime | None = None
    """UPDATE only: the target's modified time as closeloop last read it. A system with conditional updates
    (``Limits.conditional_update_batch``) refuses the write with ``MODIFIED_SINCE_READ`` when the record changed
    after it, so an edit made since the read is never overwritten; other systems ignore it."""

    def __post_init__(self) -> None:
        if self.op in (WriteOp.UPDATE, WriteOp.DELETE) and not self.native_id:
            raise ValueError(f"{self.op} of {self.ref} needs a native id")
        if self.op is WriteOp.UPSERT and (not self.upsert_key or self.upsert_key not in self.fields):
            raise ValueError(f"upsert of {self.ref} needs its key field among the fields")


MODIFIED_SINCE_READ = "MODIFIED_SINCE_READ"
"""The code of a conditional update refused because its record changed after ``WriteRequest.unmodified_since``."""


@dataclass(frozen=True, slots=True)
class VendorError:
    """A vendor's refusal, kept with its own code and message."""

    code: str
    message: str
    retryable: bool
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.code}: {self.message}{where}"


class WriteStatus(enum.StrEnum):
    """The outcome of one write."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one WriteRequest; results come back one per request, in request order."""

    ref: str
    status: WriteStatus
    native_id: str | None = None
    error: VendorError | None = None
    modified_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """True unless the write failed."""
        return self.status is not WriteStatus.FAILED

    @classmethod
    def failed(cls, ref: str, error: VendorError) -> WriteResult:
        """A failed result for ``ref``."""
        return cls(ref=ref, status=WriteStatus.FAILED, error=error)


@dataclass(frozen=True, slots=True)
class Association:
    """A link between two native records, e.g. a deal and one of its contacts."""

    from_id: str
    to_id: str
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """A system's published limits, which the HTTP layer's budget and the outbox's batching obey."""

    max_write_batch: int
    max_read_batch: int
    page_size: int
    requests_per_window: int
    window_seconds: float
    max_concurrency: int
    daily_budget: int | None = None
    buckets: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    """Extra rate buckets: name -> (requests, window seconds), e.g. a slower search endpoint."""
    conditional_update_batch: int = 0
    """The most updates one call can send, each refused if its record changed since ``unmodified_since``
    (Salesforce's Composite API with ``If-Unmodified-Since``: 25); 0 when the system has no conditional update."""


@dataclass(frozen=True, slots=True)
class Owner:
    """A user who can own records in a system (a HubSpot owner, a Salesforce or Zoho user), known by email."""

    id: str
    email: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Touchpoint:
    """A marketing interaction of one person: original source, campaign membership, form fill, visit."""

    native_id: str
    occurred_at: datetime
    kind: str
    channel: str | None = None
    campaign: str | None = None
    utm: Mapping[str, str] = field(default_factory=dict)
    detail: str | None = None
    seen_key: str | None = None
    """For a touch whose vendor keeps no time (a related-list membership): its source's key. The store keeps the
    time the key was first seen, and the touch takes that time; ``occurred_at`` is only the time proposed for a
    first sighting."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "occurred_at", utc(self.occurred_at))


@dataclass(frozen=True, slots=True)
class TouchPage:
    """One page of a system's touch stream: touches whose source records changed, up to ``last``.

    Each touch's ``native_id`` names the person (contact or lead) it belongs to; ``last`` is the position of the
    page's last source record (a campaign membership, say) in (modified_at, id) order.
    """

    touches: tuple[Touchpoint, ...]
    last: Cursor


@dataclass(frozen=True, slots=True)
class SalesActivity:
    """One sales activity on a person (a call, email, meeting or task), as a CRM's activity stream tells it.

    ``person_object`` and ``person_id`` name the person (a Lead or Contact, say) natively; ``occurred_at`` is
    when the activity counts as done (each connector says which vendor field that is); ``deleted`` marks an
    activity removed since (it no longer counts); ``owner`` is the vendor's id of the user who owns it.
    """

    id: str
    person_object: str
    person_id: str
    kind: str
    occurred_at: datetime | None
    owner: str | None = None
    deleted: bool = False

    def __post_init__(self) -> None:
        if self.occurred_at is not None:
            object.__setattr__(self, "occurred_at", utc(self.occurred_at))


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """One page of an activity stream, up to ``last`` in (modified_at, id) order."""

    activities: tuple[SalesActivity, ...]
    last: Cursor


def now_utc() -> datetime:
    """The current time as an aware UTC datetime (inject a clock where tests need one)."""
    return datetime.now(UTC)
