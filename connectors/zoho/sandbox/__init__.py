"""The Zoho CRM emulator and its seeded factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from closeloop.sandbox import Seeder
from closeloop.sandbox.seed import CAMPAIGNS, Person

from .app import ZohoSandbox
from .modules import SEED_LEAD_STATUS, SEED_LIFECYCLE, SEED_SOURCES, SEED_STAGES

__all__ = ["ZohoSandbox", "create_sandbox"]


def create_sandbox(
    seed: int = 0,
    people: int = 0,
    deals: int = 0,
    offset: int = 0,
    clock: Callable[[], datetime] | None = None,
    *,
    leads: int = 0,
    org_timezone: str = "Asia/Kolkata",
) -> ZohoSandbox:
    """A Zoho sandbox with ``people`` Contacts (from index ``offset``), ``deals`` Deals, ``leads`` Leads; each
    person with a campaign in its UTM values is a member (Responded) of a Campaigns record of that name."""
    sandbox = ZohoSandbox(seed=seed, clock=clock, org_timezone=org_timezone)
    seeder = Seeder(seed)
    campaigns = _seed_campaigns(sandbox, seeder) if people or leads else {}
    contacts = sandbox.table("Contacts")
    contact_ids: dict[int, str] = {}
    for person in seeder.people(people, offset=offset):
        row = contacts.insert(
            {
                "First_Name": person.first_name,
                "Last_Name": person.last_name,
                "Email": person.email,
                "Phone": person.phone,
                "Title": person.title,
                "Lead_Source": SEED_SOURCES[person.source],
                "Lifecycle_Stage": SEED_LIFECYCLE[person.lifecycle],
            },
            at=person.created_at,
        )
        contact_ids[person.index] = row.id
        _join(sandbox, campaigns, "Contacts", row.id, person)
    lead_table = sandbox.table("Leads")
    for person in seeder.people(leads, offset=offset + people):
        lead = lead_table.insert(
            {
                "First_Name": person.first_name,
                "Last_Name": person.last_name,
                "Email": person.email,
                "Phone": person.phone,
                "Company": person.company,
                "Lead_Source": SEED_SOURCES[person.source],
                "Lead_Status": SEED_LEAD_STATUS[person.lifecycle],
                "Lifecycle_Stage": SEED_LIFECYCLE[person.lifecycle],
            },
            at=person.created_at,
        )
        _join(sandbox, campaigns, "Leads", lead.id, person)
    deal_table = sandbox.table("Deals")
    for deal in seeder.deals(deals, people) if people else ():
        credited = [contact_ids[offset + i] for i in deal.people if offset + i in contact_ids]
        first = seeder.person(offset + deal.people[0]) if deal.people else None
        row = deal_table.insert(
            {
                "Deal_Name": deal.name,
                "Stage": SEED_STAGES[deal.stage],
                "Amount": float(deal.amount),
                "Currency": deal.currency,
                "Closing_Date": deal.close_date.date().isoformat(),
                "Lead_Source": SEED_SOURCES[first.source] if first else None,
                "Contact_Name": {"id": credited[0]} if credited else None,
            },
            at=seeder.start + (deal.close_date - seeder.start) / 4,
        )
        # Further credited people are the deal's Contact Roles, as Zoho relates several contacts to a deal.
        sandbox.contact_roles[row.id] = dict.fromkeys(credited, "Decision Maker")
    return sandbox


CAMPAIGN_TYPES = {
    "spring-launch": "Email",
    "q3-webinar-series": "Webinar",
    "brand-search": "Advertisement",
    "retargeting": "Banner Ads",
    "partner-week": "Partners",
}
"""The Zoho campaign type of each seeded campaign (its channel in closeloop's reports)."""


def _seed_campaigns(sandbox: ZohoSandbox, seeder: Seeder) -> dict[str, str]:
    """One Campaigns record per seeded campaign name, started when the seeded people start; name -> id."""
    table = sandbox.table("Campaigns")
    fields = {"Status": "Active", "Start_Date": seeder.start.date().isoformat()}
    return {
        name: table.insert(
            {"Campaign_Name": name, "Type": CAMPAIGN_TYPES.get(name, "Others"), **fields}, at=seeder.start
        ).id
        for name in CAMPAIGNS
        if name
    }


def _join(sandbox: ZohoSandbox, campaigns: dict[str, str], module: str, person_id: str, person: Person) -> None:
    if person.utm_campaign in campaigns:
        sandbox.campaigns.relate(campaigns[person.utm_campaign], module, person_id, "Responded")
