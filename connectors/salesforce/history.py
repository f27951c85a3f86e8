"""Field history tracking: when each tracked field of a record last changed, from its ``<Object>History`` rows.

An org tracks up to 20 fields per object (Setup > Object Manager > Fields > Set History Tracking). A field it
does not track has no rows, and the engine falls back to the record's modified time for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from closeloop.connector import FieldTimes
from closeloop.model import parse_utc

from . import soql

HISTORY_OBJECTS = {"Lead": "LeadHistory", "Contact": "ContactHistory", "Opportunity": "OpportunityFieldHistory"}
"""The field history object of each object closeloop reads; the parent's id is ``<Object>Id`` on its rows."""

HISTORY_FIELDS = ("Field", "CreatedDate")


def parent_field(obj: str) -> str:
    """The field of a history row naming the record it tells about."""
    return f"{obj}Id"


def history_query(allowed: soql.AllowList, obj: str, ids: Sequence[str], fields: Sequence[str]) -> str:
    """The history rows of ``fields`` of the records ``ids``."""
    parent = parent_field(obj)
    where = soql.all_of(soql.is_in(allowed, parent, ids), soql.is_in(allowed, "Field", fields))
    return soql.select(allowed, [parent, *HISTORY_FIELDS], where)


def latest(obj: str, rows: Iterable[Mapping[str, Any]]) -> FieldTimes:
    """Record id -> field -> the newest change time among the rows."""
    parent = parent_field(obj)
    found: FieldTimes = {}
    for row in rows:
        times = found.setdefault(str(row[parent]), {})
        name, moment = str(row["Field"]), parse_utc(str(row["CreatedDate"]))
        if name not in times or moment > times[name]:
            times[name] = moment
    return found
