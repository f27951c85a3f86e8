"""Campaign memberships as touches: a member that responded is a touch at its first-responded date.

Salesforce keeps the membership (CampaignMember: campaign, contact or lead, member status, HasResponded,
FirstRespondedDate) apart from the person, so a new membership leaves the contact's SystemModstamp alone: the
members are read as their own change stream (``touch_changes``), and by person when one first arrives. Each
touch takes its campaign's name, and its channel from the campaign's type; a member that never responded (Sent)
is no touch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from closeloop.model import NativeRecord, Touchpoint, parse_utc

MEMBER_OBJECT, CAMPAIGN_OBJECT = "CampaignMember", "Campaign"
MEMBER_FIELDS = ("Id", "CampaignId", "ContactId", "LeadId", "Status", "HasResponded", "FirstRespondedDate",
                 "CreatedDate", "SystemModstamp", "IsDeleted")  # fmt: skip
CAMPAIGN_FIELDS = ("Id", "Name", "Type")
PERSON_KEYS = {"Contact": "ContactId", "Lead": "LeadId"}
# Campaign types of a new org and the channels closeloop reports them under (others: "other").
CHANNELS = {
    "Email": "email",
    "Webinar": "events",
    "Conference": "events",
    "Trade Show": "events",
    "Seminar / Conference": "events",
    "Referral Program": "referral",
    "Partners": "referral",
    "Banner Ads": "paid_social",
    "Advertisement": "paid_search",
}


def responded_at(member: Mapping[str, Any]) -> datetime | None:
    """When the member first responded (a date: midnight UTC), or None when it never did."""
    if not member.get("HasResponded"):
        return None
    day = member.get("FirstRespondedDate")
    if day:
        return datetime.fromisoformat(f"{day}T00:00:00+00:00")
    created = member.get("CreatedDate")
    return parse_utc(str(created)) if created else None


def member_touch(member: Mapping[str, Any], campaigns: Mapping[str, Mapping[str, Any]]) -> Touchpoint | None:
    """The touch of one live member that responded: its person, time, campaign name and channel, and status."""
    person = member.get("ContactId") or member.get("LeadId")
    at = responded_at(member)
    if member.get("IsDeleted") or not person or at is None:
        return None
    campaign = campaigns.get(str(member.get("CampaignId")), {})
    return Touchpoint(
        native_id=str(person),
        occurred_at=at,
        kind="campaign",
        channel=CHANNELS.get(str(campaign.get("Type") or ""), "other"),
        campaign=str(campaign["Name"]) if campaign.get("Name") else None,
        detail=str(member.get("Status") or "") or None,
    )


def campaign_ids(members: list[NativeRecord]) -> list[str]:
    """The campaigns these members belong to, each once."""
    return list(dict.fromkeys(str(m.fields["CampaignId"]) for m in members if m.fields.get("CampaignId")))
