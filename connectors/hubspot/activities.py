"""Calls, emails, meetings and tasks as sales activities, for the MQL follow-up SLA.

Each engagement object is read as its own change stream (search on ``hs_lastmodifieddate``, the archived list
on the connector's sweep schedule), and its contacts by a v4 association batch read. A call counts at its
``hs_timestamp`` unless its status says it did not connect (busy, no answer, failed, canceled, still queued);
an email when sent by the rep (not an incoming one); a meeting when booked (``hs_createdate``); a task when
completed, at ``hs_task_completion_date``. An engagement on several contacts is a follow-up of each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from closeloop.model import NativeRecord, SalesActivity, parse_utc

from .api import MAX_BATCH, HubSpotApi

ENGAGEMENTS = ("calls", "emails", "meetings", "tasks")
CONTACTS = "contacts"
PROPERTIES = {
    "calls": ("hs_timestamp", "hs_call_status", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate"),
    "emails": ("hs_timestamp", "hs_email_direction", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate"),
    "meetings": ("hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate"),
    "tasks": ("hs_task_status", "hs_task_completion_date", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate"),
}
NOT_CONNECTED = frozenset({"BUSY", "NO_ANSWER", "FAILED", "CANCELED", "QUEUED", "CONNECTING", "RINGING"})
_KINDS = {"calls": "call", "emails": "email", "meetings": "meeting", "tasks": "task"}


def done_at(stream: str, fields: Mapping[str, object]) -> str | None:
    """When an engagement counts as a follow-up (vendor text), or None when it does not (yet)."""
    if stream == "calls":
        return None if fields.get("hs_call_status") in NOT_CONNECTED else str(fields.get("hs_timestamp") or "") or None
    if stream == "emails":
        return (
            None
            if fields.get("hs_email_direction") == "INCOMING_EMAIL"
            else str(fields.get("hs_timestamp") or "") or None
        )
    if stream == "meetings":
        return str(fields.get("hs_createdate") or "") or None
    if fields.get("hs_task_status") != "COMPLETED":
        return None
    return str(fields.get("hs_task_completion_date") or "") or None


def to_activities(stream: str, record: NativeRecord, contacts: Sequence[str]) -> list[SalesActivity]:
    """One sales activity per contact of the engagement, all under its id; an engagement with no contact (left)
    comes back once without a person, so that what was stored of it goes."""
    text = done_at(stream, record.fields)
    at = parse_utc(text) if text and not record.deleted else None
    owner = str(record.fields.get("hubspot_owner_id") or "") or None
    kind = _KINDS[stream]
    people = list(contacts) or [""]
    return [SalesActivity(record.id, CONTACTS, c, kind, at, owner, record.deleted) for c in people]


async def contacts_of(api: HubSpotApi, stream: str, ids: Sequence[str]) -> dict[str, list[str]]:
    """The contacts each engagement is associated with (v4 batch read; an engagement with none is left out)."""
    found: dict[str, list[str]] = {}
    pending = [{"id": i} for i in dict.fromkeys(ids)]
    while pending:
        chunk, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
        answer = await api.post(
            f"/crm/v4/associations/{stream}/{CONTACTS}/batch/read", {"inputs": chunk}, idempotent=True
        )
        for result in answer.get("results", []):
            from_id = str(result["from"]["id"])
            found.setdefault(from_id, []).extend(str(to["toObjectId"]) for to in result.get("to", []))
            after = result.get("paging", {}).get("next", {}).get("after")
            if after:
                pending.append({"id": from_id, "after": after})
    return found
