"""The emulated instance's activity log, and a lead table that writes to it on every change.

Marketo has no "changed since" filter on leads: changes are read from the activity log (New Lead, Change Data
Value, Delete Lead, Merge Leads). Every mutation of the lead table, including the ones tests make directly on
the table, therefore logs the activity Marketo would log, stamped at the same second as the lead's updatedAt.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]  # ships no stubs

from closeloop.model import iso_utc, parse_utc, utc
from closeloop.sandbox.records import RecordTable, Row

from .schema import (
    CHANGE_DATA_VALUE,
    DELETE_LEAD,
    LEAD_FIELDS,
    MERGE_LEADS,
    NEW_LEAD,
    LeadField,
)

Position = tuple[datetime, int]
"""A place in the activity log: (activityDate, activity id); a paging token encodes one."""


def whole_second(moment: datetime) -> datetime:
    """Marketo stamps activities and updatedAt to the second."""
    return utc(moment).replace(microsecond=0)


def encode_token(position: Position) -> str:
    """An opaque paging token for a log position (Marketo's tokens are base32 text too)."""
    raw = f"{iso_utc(position[0], millis=False)}|{position[1]}".encode()
    return base64.b32encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Position | None:
    """The log position of a paging token, or None when it is not one of ours."""
    try:
        padded = token + "=" * (-len(token) % 8)
        moment, _, activity_id = base64.b32decode(padded).decode().partition("|")
        return parse_utc(moment), int(activity_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


@dataclass
class Activity:
    """One activity record of a lead."""

    id: int
    lead_id: int
    date: datetime
    type_id: int
    primary_value_id: int | None = None
    primary_value: str | None = None
    attributes: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    """The ``fields`` of a lead-change activity: {id, name, newValue, oldValue}."""

    @property
    def position(self) -> Position:
        """This activity's place in the log."""
        return (self.date, self.id)

    def render(self, *, lead_change: bool = False) -> dict[str, Any]:
        """The activity as the activities endpoints return it."""
        body: dict[str, Any] = {
            "id": self.id,
            "marketoGUID": str(uuid.UUID(int=self.id)),
            "leadId": self.lead_id,
            "activityDate": iso_utc(self.date, millis=False),
            "activityTypeId": self.type_id,
        }
        if lead_change:
            body["fields"] = self.changes
        else:
            if self.primary_value_id is not None:
                body["primaryAttributeValueId"] = self.primary_value_id
            if self.primary_value is not None:
                body["primaryAttributeValue"] = self.primary_value
        body["attributes"] = self.attributes
        return body


@dataclass
class ActivityLog:
    """Activities ordered by (activityDate, id), as the paging-token endpoints walk them."""

    _by_id: dict[int, Activity] = field(default_factory=dict)
    _by_type: dict[int, SortedList] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, lead_id: str | int, at: datetime, type_id: int, **details: Any) -> Activity:
        """Log one activity of a lead at ``at`` (stamped to the second)."""
        activity = Activity(next(self._ids), int(lead_id), whole_second(at), type_id, **details)
        self._by_id[activity.id] = activity
        self._by_type.setdefault(type_id, SortedList()).add(activity.position)
        return activity

    def after(self, position: Position, types: Iterable[int]) -> Iterator[Activity]:
        """Activities of these types strictly after ``position``, in log order."""
        streams = [
            self._by_type[t].irange(minimum=position, inclusive=(False, True)) for t in set(types) if t in self._by_type
        ]
        for key in heapq.merge(*streams):
            yield self._by_id[key[1]]

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass
class LeadTable(RecordTable):
    """The lead table: email lookups allowing duplicates (as Marketo does) and an activity log of changes."""

    activities: ActivityLog = field(default_factory=ActivityLog)
    source: str = "Web service API"
    lead_fields: dict[str, LeadField] = field(default_factory=lambda: dict(LEAD_FIELDS))
    """This instance's lead fields: the standard ones, then those created through the API."""
    _emails: dict[str, set[str]] = field(default_factory=dict)
    _merging: bool = False

    def with_email(self, email: str) -> list[Row]:
        """Live leads with this email, any case (Marketo matches emails case-insensitively)."""
        ids = self._emails.get(email.strip().lower(), set())
        rows = (self.get(row_id) for row_id in sorted(ids, key=int))
        return [row for row in rows if row is not None]

    def insert(self, fields: Mapping[str, Any], *, row_id: str | None = None, at: datetime | None = None) -> Row:
        """Create a lead and log New Lead."""
        row = super().insert(fields, row_id=row_id, at=whole_second(at or self.clock.now()))
        self._index_email(row)
        self.activities.add(
            row.id,
            row.created_at,
            NEW_LEAD,
            primary_value_id=int(row.id),
            primary_value=_lead_name(row),
            attributes=[{"name": "Source Type", "value": self.source}],
        )
        return row

    def update(self, row_id: str, fields: Mapping[str, Any], *, at: datetime | None = None) -> Row:
        """Change a lead; each changed field logs Change Data Value; an unchanged write changes nothing."""
        row = self.rows[row_id]
        changed = {k: v for k, v in fields.items() if row.fields.get(k) != v}
        if not changed:
            return row
        old = dict(row.fields)
        self._unindex_email(row)
        super().update(row_id, changed, at=whole_second(at or self.clock.now()))
        self._index_email(row)
        for name, value in changed.items():
            self._log_change(row, name, old.get(name), value)
        return row

    def delete(self, row_id: str, *, at: datetime | None = None) -> Row:
        """Delete a lead and log Delete Lead (a merge logs Merge Leads on the winner instead)."""
        row = self.rows[row_id]
        self._unindex_email(row)
        super().delete(row_id, at=whole_second(at or self.clock.now()))
        if not self._merging:
            self.activities.add(
                row.id,
                row.modified_at,
                DELETE_LEAD,
                primary_value_id=int(row.id),
                primary_value=_lead_name(row),
                attributes=[{"name": "Remove from CRM", "value": False}],
            )
        return row

    def merge(self, loser_id: str, winner_id: str, *, at: datetime | None = None) -> Row:
        """Merge a loser into a winner: the loser is deleted, the winner logs Merge Leads naming it."""
        moment = whole_second(at or self.clock.now())
        self._merging = True
        try:
            winner = super().merge(loser_id, winner_id, at=moment)
        finally:
            self._merging = False
        self._index_email(winner)
        self.activities.add(
            winner.id,
            moment,
            MERGE_LEADS,
            primary_value_id=int(winner.id),
            primary_value=_lead_name(winner),
            attributes=[
                {"name": "Merge ids", "value": f"[{loser_id}]"},
                {"name": "Merge Source", "value": self.source},
                {"name": "Merged in Sales", "value": False},
                {"name": "Master Updated", "value": True},
            ],
        )
        return winner

    def restamp(self, row_ids: list[str], at: datetime) -> None:
        """A month-end mass update: every lead gets one updatedAt and logs a Lead Status change."""
        moment = whole_second(at)
        super().restamp(row_ids, moment)
        for row_id in row_ids:
            row = self.rows[row_id]
            status = row.fields.get("leadStatus")
            self._log_change(row, "leadStatus", status, status, reason="Smart campaign mass update")

    def _log_change(self, row: Row, name: str, old: Any, new: Any, *, reason: str | None = None) -> None:
        spec = self.lead_fields.get(name)
        field_id = spec.id if spec else 0
        self.activities.add(
            row.id,
            row.modified_at,
            CHANGE_DATA_VALUE,
            primary_value_id=field_id,
            primary_value=spec.display_name if spec else name,
            attributes=[
                {"name": "New Value", "value": _text(new)},
                {"name": "Old Value", "value": _text(old)},
                {"name": "Reason", "value": reason or self.source},
                {"name": "Source", "value": self.source},
            ],
            changes=[{"id": field_id, "name": name, "newValue": _text(new), "oldValue": _text(old)}],
        )

    def _index_email(self, row: Row) -> None:
        email = row.fields.get("email")
        if isinstance(email, str) and email and not row.deleted:
            self._emails.setdefault(email.strip().lower(), set()).add(row.id)

    def _unindex_email(self, row: Row) -> None:
        email = row.fields.get("email")
        if isinstance(email, str) and email:
            self._emails.get(email.strip().lower(), set()).discard(row.id)


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _lead_name(row: Row) -> str:
    return " ".join(str(row.fields.get(k) or "") for k in ("firstName", "lastName")).strip()
