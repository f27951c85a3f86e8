"""Campaign memberships as touches: the Campaigns module and its related lists of Contacts and Leads.

Zoho keeps a membership only as a related list between a campaign and a person, with a ``Member_Status`` and
no time of its own, and adding a member may leave both records' ``Modified_Time`` alone. So the touch stream:

- lists the campaigns (``GET /Campaigns``, 200 a call) on every read;
- reads the members (``GET /Campaigns/{id}/Contacts`` and ``/Leads``, 200 a call) of the campaigns modified
  since the last read, and of every campaign on a full re-read: the first read, and the first read of each new
  re-read interval (daily by default), which is what finds members added to a campaign nobody edited;
- dates each membership by the first time closeloop saw it (the engine keeps that time per ``seen_key``), except
  on a campaign's first read, where its members existed before closeloop looked: then the touch time is the later
  of the campaign's ``Start_Date`` (its creation when it has none) and the person's ``Created_Time``, never later
  than the read (a backfill).

Each touch takes its campaign's name, its channel from the campaign's ``Type``, and the member status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from closeloop.model import Cursor, Touchpoint, parse_utc

CAMPAIGNS = "Campaigns"
CAMPAIGN_FIELDS = ("Campaign_Name", "Type", "Status", "Start_Date", "End_Date", "Created_Time", "Modified_Time")
MEMBER_FIELDS = ("Created_Time", "Member_Status")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Where re-read intervals are counted from (and the stream's position before any read)."""
# Campaign types of a new Zoho org and the channels closeloop reports them under (others: "other").
CHANNELS = {
    "Email": "email",
    "Webinar": "events",
    "Conference": "events",
    "Trade Show": "events",
    "Referral Program": "referral",
    "Partners": "referral",
    "Banner Ads": "paid_social",
    "Advertisement": "paid_search",
}


@dataclass(frozen=True, slots=True)
class Campaign:
    """A record of the Campaigns module, as far as touches need it."""

    id: str
    name: str | None
    type: str | None
    start: datetime | None
    created_at: datetime
    modified_at: datetime


def to_campaign(row: Mapping[str, Any]) -> Campaign:
    """A Campaigns record from a list call (times in the org's zone become aware UTC; a date is midnight UTC)."""
    start = row.get("Start_Date")
    return Campaign(
        id=str(row["id"]),
        name=str(row["Campaign_Name"]) if row.get("Campaign_Name") else None,
        type=str(row["Type"]) if row.get("Type") else None,
        start=datetime.fromisoformat(f"{start}T00:00:00+00:00") if start else None,
        created_at=parse_utc(str(row["Created_Time"])),
        modified_at=parse_utc(str(row["Modified_Time"])),
    )


def reread_due(since: Cursor | None, now: datetime, every: timedelta) -> bool:
    """Whether this read re-reads every campaign: the first read, or one whose window (since, now] takes in the
    start of a re-read interval (intervals counted from 2000-01-01 UTC, so the full re-read is at a stable hour)."""
    if since is None:
        return True
    return (now - EPOCH) // every > (since.modified_at - EPOCH) // every


def campaigns_to_read(
    campaigns: list[Campaign], since: Cursor | None, now: datetime, every: timedelta
) -> list[Campaign]:
    """Every campaign on a full re-read, else those modified (or created) since the last read."""
    if since is None or reread_due(since, now, every):
        return list(campaigns)
    return [c for c in campaigns if c.modified_at >= since.modified_at]


def first_read(campaign: Campaign, since: Cursor | None) -> bool:
    """Whether closeloop reads this campaign's members for the first time (its members predate the read)."""
    return since is None or campaign.created_at >= since.modified_at


def backfill_time(campaign: Campaign, person_created: datetime | None, now: datetime) -> datetime:
    """A membership found on a campaign's first read: the later of the campaign's start (its creation when it
    has no start date) and the person's creation, never later than the read."""
    moments = [campaign.start or campaign.created_at, *([person_created] if person_created else [])]
    return min(max(moments), now)


def member_touch(campaign: Campaign, member: Mapping[str, Any], *, backfill: bool, now: datetime) -> Touchpoint:
    """The touch of one member of a related list: its person, campaign name and channel, member status, and the
    time proposed for its first sighting (the store keeps the first one, by campaign and person)."""
    person = str(member["id"])
    created = parse_utc(str(member["Created_Time"])) if member.get("Created_Time") else None
    return Touchpoint(
        native_id=person,
        occurred_at=backfill_time(campaign, created, now) if backfill else now,
        kind="campaign",
        channel=CHANNELS.get(campaign.type or "", "other"),
        campaign=campaign.name,
        detail=str(member.get("Member_Status") or "") or None,
        seen_key=f"{campaign.id}:{person}",
    )
