"""Calls, Tasks and Events as sales activities, for the MQL follow-up SLA.

Each module is read as its own change stream. An activity names its person in ``Who_Id`` (a contact); a call
counts at its ``Call_Start_Time``, a task when its status is Completed at its ``Closed_Time``, an event at its
creation (the meeting was booked with the person). A lead's activities, which Zoho links through ``What_Id``
and ``$se_module`` instead, are not read yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from closeloop.model import NativeRecord, SalesActivity, parse_utc

ACTIVITY_MODULES = ("Calls", "Tasks", "Events")
CONTACTS = "Contacts"
_KINDS = {"Calls": "call", "Tasks": "task", "Events": "meeting"}


def _id(lookup: Any) -> str:
    return str(lookup.get("id") or "") if isinstance(lookup, Mapping) else str(lookup or "")


def to_activity(module: str, record: NativeRecord) -> SalesActivity:
    """A Calls, Tasks or Events record as a sales activity; not done (no time) when open or naming no contact."""
    fields = record.fields
    who = _id(fields.get("Who_Id"))
    if module == "Tasks":
        done = fields.get("Closed_Time") if fields.get("Status") == "Completed" else None
    elif module == "Calls":
        done = fields.get("Call_Start_Time") or fields.get("Created_Time")
    else:
        done = fields.get("Created_Time")
    at = parse_utc(str(done)) if done and who else None
    owner = _id(fields.get("Owner")) or None
    return SalesActivity(record.id, CONTACTS, who, _KINDS.get(module, module.lower()), at, owner, record.deleted)
