"""The Marketo Engage emulator and its seeding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from closeloop.model import iso_utc
from closeloop.sandbox.seed import CAMPAIGNS, Deal, Person, Seeder

from .activity import whole_second
from .app import MarketoSandbox
from .schema import (
    CHANGE_STATUS_IN_PROGRESSION,
    FILL_OUT_FORM,
    VISIT_WEBPAGE,
)

__all__ = ["MarketoSandbox", "create_sandbox"]

LEAD_SOURCE = {
    "organic_search": "Organic Search",
    "paid_search": "Paid Search",
    "paid_social": "Paid Social",
    "email": "Email",
    "referral": "Referral",
    "direct": "Direct",
    "events": "Event",
}
LEAD_STATUS = {
    "subscriber": "Open",
    "lead": "Open",
    "mql": "Marketing Qualified",
    "sql": "Sales Qualified",
    "opportunity": "Working",
    "customer": "Converted",
}
STAGES = {
    # neutral seed stage -> (Marketo opportunity stage, isClosed, isWon, probability)
    "discovery": ("Prospecting", False, False, 10),
    "qualified": ("Qualification", False, False, 25),
    "proposal": ("Proposal/Price Quote", False, False, 60),
    "negotiation": ("Negotiation/Review", False, False, 80),
    "won": ("Closed Won", True, True, 100),
    "lost": ("Closed Lost", True, False, 0),
}
FORM_ID = 1001
LANDING_PAGE_ID = 2001


def create_sandbox(
    seed: int = 0,
    people: int = 0,
    deals: int = 0,
    offset: int = 0,
    clock: Callable[[], datetime] | None = None,
    *,
    leads: int = 0,
    **knobs: Any,
) -> MarketoSandbox:
    """A Marketo sandbox seeded with ``people`` leads (from ``offset``) and ``deals`` opportunities.

    ``leads`` is accepted for the common sandbox signature and ignored: a Marketo lead is its only person record.
    """
    sandbox = MarketoSandbox(seed=seed, clock=clock)
    sandbox.knobs.update(knobs)
    seeder = Seeder(seed)
    for number, campaign in enumerate(c for c in CAMPAIGNS if c):
        sandbox.programs[3001 + number] = campaign
    lead_ids: dict[int, str] = {}
    for person in seeder.people(people, offset=offset):
        lead_ids[person.index - offset] = seed_person(sandbox, person)
    for deal in seeder.deals(deals, people):
        seed_deal(sandbox, deal, lead_ids)
    sandbox.stats.reset()
    return sandbox


def seed_person(sandbox: MarketoSandbox, person: Person) -> str:
    """Render one seeded person as a lead with its web visit, form fill and program membership."""
    program_id = next((pid for pid, name in sandbox.programs.items() if name == person.utm_campaign), None)
    utm = {
        "utm_source": person.utm_source,
        "utm_medium": person.utm_medium,
        "utm_campaign": person.utm_campaign,
    }
    query = urlencode({k: v for k, v in utm.items() if v})
    page_url = f"https://www.example.com/landing{'?' + query if query else ''}"
    fields = {
        "email": person.email,
        "firstName": person.first_name,
        "lastName": person.last_name,
        "phone": person.phone,
        "company": person.company,
        "title": person.title,
        "leadSource": LEAD_SOURCE[person.source],
        "originalSourceType": "Web form fillout",
        "originalSourceInfo": page_url,
        "acquisitionProgramId": program_id,
        "leadStatus": LEAD_STATUS[person.lifecycle],
        "lifecycleStage": person.lifecycle,
        "utmSource": person.utm_source or None,
        "utmMedium": person.utm_medium or None,
        "utmCampaign": person.utm_campaign or None,
    }
    created = whole_second(person.created_at)
    row = sandbox.leads.insert(fields, at=created)
    log = sandbox.leads.activities
    web = [{"name": "Query Parameters", "value": query}, {"name": "Webpage URL", "value": page_url}]
    log.add(row.id, created - timedelta(minutes=3), VISIT_WEBPAGE, primary_value_id=LANDING_PAGE_ID,
            primary_value="www.example.com/landing", attributes=web)  # fmt: skip
    form = [
        {"name": "Query Parameters", "value": query},
        {"name": "Referrer URL", "value": page_url},
        {"name": "Webpage ID", "value": LANDING_PAGE_ID},
    ]
    log.add(row.id, created, FILL_OUT_FORM, primary_value_id=FORM_ID, primary_value="Contact Us", attributes=form)
    if program_id is not None:
        joined = created + timedelta(minutes=1)
        sandbox.memberships.setdefault(row.id, {})[program_id] = {
            "id": program_id,
            "acquiredBy": True,
            "isExhausted": False,
            "membershipDate": iso_utc(joined, millis=False),
            "progressionStatus": "Registered",
            "reachedSuccess": False,
            "updatedAt": iso_utc(joined, millis=False),
        }
        status = [
            {"name": "Acquired By", "value": True},
            {"name": "New Status", "value": "Registered"},
            {"name": "Old Status", "value": "Not in Program"},
            {"name": "Reason", "value": "Filled out form"},
            {"name": "Success", "value": False},
        ]
        log.add(row.id, joined, CHANGE_STATUS_IN_PROGRESSION, primary_value_id=program_id,
                primary_value=person.utm_campaign, attributes=status)  # fmt: skip
    return row.id


def seed_deal(sandbox: MarketoSandbox, deal: Deal, lead_ids: dict[int, str]) -> None:
    """Render one seeded deal as an opportunity with a role per credited lead."""
    stage, closed, won, probability = STAGES[deal.stage]
    external = f"closeloop-deal-{deal.index}"
    sandbox.tables["opportunities"].insert(
        {
            "externalOpportunityId": external,
            "name": deal.name,
            "stage": stage,
            "amount": float(deal.amount),
            "closeDate": deal.close_date.date().isoformat(),
            "isClosed": closed,
            "isWon": won,
            "probability": probability,
        }
    )
    for position, person in enumerate(deal.people):
        if person in lead_ids:
            sandbox.tables["opportunityRoles"].insert(
                {
                    "externalOpportunityId": external,
                    "leadId": int(lead_ids[person]),
                    "role": "Decision Maker",
                    "isPrimary": position == 0,
                }
            )
