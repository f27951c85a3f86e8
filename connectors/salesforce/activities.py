"""Tasks and Events as sales activities, for the MQL follow-up SLA.

Salesforce keeps a person's activities apart from the person (``WhoId`` names the Lead or Contact, told apart
by the id's key prefix), so each object is read as its own change stream. A Task counts as done when it is
closed, at its ``CompletedDateTime`` (a logged call is created Completed; an open to-do made by an assignment
rule is no follow-up until someone closes it); an Event counts at its creation, when the meeting was booked
with the person. An activity whose ``WhoId`` is blank (or an account, a case) belongs to nobody the SLA tracks.
"""

from __future__ import annotations

from closeloop.model import NativeRecord, SalesActivity, parse_utc

ACTIVITY_OBJECTS = ("Task", "Event")
PERSON_PREFIXES = {"00Q": "Lead", "003": "Contact"}
"""Key prefixes of the people ``WhoId`` may name."""


def to_activity(stream: str, record: NativeRecord) -> SalesActivity:
    """A Task or Event row as a sales activity; not done (no time) when it is open or names no person."""
    fields = record.fields
    who = str(fields.get("WhoId") or "")
    person = PERSON_PREFIXES.get(who[:3])
    if stream == "Task":
        kind = str(fields.get("TaskSubtype") or fields.get("Type") or "task").lower()
        done = fields.get("CompletedDateTime") if fields.get("IsClosed") else None
    else:
        kind, done = "meeting", fields.get("CreatedDate")
    at = parse_utc(str(done)) if done and person else None
    owner = str(fields["OwnerId"]) if fields.get("OwnerId") else None
    return SalesActivity(record.id, person or "", who, kind, at, owner, deleted=record.deleted)
