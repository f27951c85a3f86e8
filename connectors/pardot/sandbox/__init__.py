"""The Account Engagement (Pardot) emulator and its seeding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from closeloop.sandbox.seed import CAMPAIGNS, Person, Seeder

from ..fields import CLICK, FORM_SUCCESS, VIEW
from .app import PardotSandbox

__all__ = ["CLOSELOOP_FIELDS", "PardotSandbox", "create_sandbox"]

SOURCE = {
    "organic_search": "Organic Search",
    "paid_search": "Paid Search",
    "paid_social": "Paid Social",
    "email": "Email",
    "referral": "Referral",
    "direct": "Direct",
    "events": "Event",
}
CLOSELOOP_FIELDS = (
    ("closeloop_id", "closeloop Id", "Text"),
    ("closeloop_revenue", "closeloop Revenue", "Number"),
    ("closeloop_won_deals", "closeloop Won Deals", "Number"),
    ("closeloop_first_won_at", "closeloop First Won At", "Date"),
    ("closeloop_last_won_at", "closeloop Last Won At", "Date"),
    ("closeloop_customer_since", "closeloop Customer Since", "Date"),
)
"""The prospect custom fields closeloop writes (fieldId, name, type). A new business unit has none: closeloop's
setup step creates them through the API; ``custom_fields=True`` seeds them for tests that skip that step."""
WEBSITE = "website"
FORM_ID, EMAIL_ID = 1001, 4001


def create_sandbox(
    seed: int = 0,
    people: int = 0,
    deals: int = 0,
    offset: int = 0,
    clock: Callable[[], datetime] | None = None,
    *,
    custom_fields: bool = False,
    leads: int = 0,
    **knobs: Any,
) -> PardotSandbox:
    """A business unit seeded with ``people`` prospects (from ``offset``) and their visitor activities.

    ``deals`` is accepted for the common sandbox signature and ignored: opportunities are owned by the CRM
    connector in Account Engagement and read-only in v5.
    ``leads`` is accepted for the common sandbox signature and ignored: a prospect is its only person record.
    """
    sandbox = PardotSandbox(seed=seed, clock=clock)
    sandbox.knobs.update(knobs)
    if custom_fields:
        for field_id, name, kind in CLOSELOOP_FIELDS:
            sandbox.add_custom_field(field_id, name, kind)
    seeder = Seeder(seed)
    campaigns = sandbox.tables["campaigns"]
    for name in (WEBSITE, *(c for c in CAMPAIGNS if c)):
        campaigns.insert({"name": name, "cost": 0}, at=seeder.start)
    for person in seeder.people(people, offset=offset):
        seed_person(sandbox, person)
    sandbox.stats.reset()
    return sandbox


def seed_person(sandbox: PardotSandbox, person: Person) -> str:
    """One seeded person as a prospect with a page view, a form fill and, from email, an email click."""
    by_name = {row.fields["name"]: row.id for row in sandbox.tables["campaigns"].live()}
    campaign_id = int(by_name.get(person.utm_campaign) or by_name[WEBSITE])
    utm = {"utm_source": person.utm_source, "utm_medium": person.utm_medium, "utm_campaign": person.utm_campaign}
    query = urlencode({k: v for k, v in utm.items() if v})
    page = f"https://www.example.com/landing{'?' + query if query else ''}"
    created = person.created_at.replace(microsecond=0)
    fields = {
        "email": person.email,
        "firstName": person.first_name,
        "lastName": person.last_name,
        "phone": person.phone,
        "company": person.company,
        "jobTitle": person.title,
        "source": SOURCE[person.source],
        "campaignId": campaign_id,
        "sourceParameter": person.utm_source or None,
        "mediumParameter": person.utm_medium or None,
        "campaignParameter": person.utm_campaign or None,
        "firstReferrerUrl": page,
    }
    row = sandbox.tables["prospects"].insert(fields, at=created)
    sandbox.log_activity(int(row.id), created - timedelta(minutes=3), VIEW, "View", details=page,
                         campaignId=campaign_id, visitorPageViewId=int(row.id) * 10)  # fmt: skip
    sandbox.log_activity(int(row.id), created, FORM_SUCCESS, "Success", details=page, formId=FORM_ID,
                         campaignId=campaign_id)  # fmt: skip
    if person.source == "email":
        sandbox.log_activity(int(row.id), created + timedelta(days=1), CLICK, "Click", details="Monthly newsletter",
                             emailId=EMAIL_ID, campaignId=campaign_id)  # fmt: skip
    return row.id
