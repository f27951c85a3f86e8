"""Seeder people and deals rendered into HubSpot's own properties and values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from closeloop.model import iso_utc
from closeloop.sandbox import Deal, Person, Seeder
from closeloop.sandbox.seed import LIFECYCLE

from .answers import HubSpotTable
from .app import HubSpotSandbox
from .catalog import stage_date

SOURCE_VALUES = {
    "organic_search": "ORGANIC_SEARCH",
    "paid_search": "PAID_SEARCH",
    "paid_social": "PAID_SOCIAL",
    "email": "EMAIL_MARKETING",
    "referral": "REFERRALS",
    "direct": "DIRECT_TRAFFIC",
    "events": "OFFLINE",
}
LIFECYCLE_VALUES = {"mql": "marketingqualifiedlead", "sql": "salesqualifiedlead"}
STAGE_VALUES = {
    "discovery": "appointmentscheduled",
    "qualified": "qualifiedtobuy",
    "proposal": "presentationscheduled",
    "negotiation": "decisionmakerboughtin",
    "won": "closedwon",
    "lost": "closedlost",
}


_SHARED: dict[str, str] = {}


def _shared(text: str) -> str:
    """One stored copy of a text many records hold (drill-downs, form names): a million rows, not a million copies."""
    return _SHARED.setdefault(text, text)


def drill_down(person: Person) -> tuple[str, str]:
    """``hs_analytics_source_data_1`` and ``_data_2`` the way HubSpot fills them for each source."""
    first, second = _drill_down(person)
    return _shared(first), _shared(second)


def _drill_down(person: Person) -> tuple[str, str]:
    source = SOURCE_VALUES[person.source]
    if source in ("ORGANIC_SEARCH", "PAID_SEARCH"):
        return person.utm_source, person.utm_campaign or "(no keyword)"
    if source == "PAID_SOCIAL":
        return person.utm_source.capitalize(), person.utm_campaign
    if source == "EMAIL_MARKETING":
        return person.utm_campaign or "newsletter", ""
    if source == "REFERRALS":
        return f"{person.utm_source}.example.com", ""
    if source == "OFFLINE":
        return "INTEGRATION", person.utm_campaign or person.utm_source
    return "", ""


def contact_properties(person: Person) -> dict[str, str]:
    """A seeded person as HubSpot contact properties (empty values left out)."""
    source = SOURCE_VALUES[person.source]
    data_1, data_2 = drill_down(person)
    first_seen = person.created_at - timedelta(minutes=3 + person.index % 50)
    campaign = person.utm_campaign
    form = _shared(f"{campaign.replace('-', ' ').title()} form" if campaign else "Contact us form")
    created = iso_utc(person.created_at)
    props = {
        "email": person.email,
        "firstname": person.first_name,
        "lastname": person.last_name,
        "phone": person.phone,
        "company": person.company,
        "jobtitle": person.title,
        "lifecyclestage": LIFECYCLE_VALUES.get(person.lifecycle, person.lifecycle),
        "hs_analytics_source": source,
        "hs_analytics_source_data_1": data_1,
        "hs_analytics_source_data_2": data_2,
        "hs_analytics_first_timestamp": iso_utc(first_seen),
        "hs_latest_source": source,
        "hs_latest_source_data_1": data_1,
        "hs_latest_source_data_2": data_2,
        "hs_latest_source_timestamp": created,
        "first_conversion_event_name": form,
        "first_conversion_date": created,
        "recent_conversion_event_name": form,
        "recent_conversion_date": created,
        "num_conversion_events": "1",
        "utm_source": person.utm_source,
        "utm_medium": person.utm_medium,
        "utm_campaign": person.utm_campaign,
    }
    return {name: value for name, value in props.items() if value} | stage_dates(person)


def stage_dates(person: Person) -> dict[str, str]:
    """When the person entered each lifecycle stage up to its current one, days apart from its creation."""
    if person.lifecycle not in LIFECYCLE:
        return {}
    reached = LIFECYCLE[: LIFECYCLE.index(person.lifecycle) + 1]
    step = timedelta(days=2 + person.index % 9)
    return {
        stage_date(LIFECYCLE_VALUES.get(stage, stage)): iso_utc(person.created_at + step * rank)
        for rank, stage in enumerate(reached)
    }


def deal_properties(deal: Deal) -> dict[str, str]:
    """A seeded deal as HubSpot deal properties in the default pipeline."""
    return {
        "dealname": deal.name,
        "amount": str(deal.amount),
        "deal_currency_code": deal.currency,
        "dealstage": STAGE_VALUES[deal.stage],
        "pipeline": "default",
        "closedate": iso_utc(deal.close_date),
    }


def create_sandbox(
    seed: int = 0,
    people: int = 0,
    deals: int = 0,
    offset: int = 0,
    clock: Callable[[], datetime] | None = None,
    *,
    leads: int = 0,
    **knobs: Any,
) -> HubSpotSandbox:
    """A HubSpot sandbox seeded with people ``offset..offset+people-1`` and ``deals`` deals.

    ``leads`` is accepted for the common sandbox signature and ignored: HubSpot keeps no leads apart from its contacts.
    """
    sandbox = HubSpotSandbox(seed=seed, clock=clock)
    sandbox.knobs.update(knobs)
    seeder = Seeder(seed)
    contacts, deal_table = sandbox.table("contacts"), sandbox.table("deals")
    assert isinstance(contacts, HubSpotTable)
    assert isinstance(deal_table, HubSpotTable)
    contact_ids: list[str] = []  # by person index - offset
    for person in seeder.people(people, offset=offset):
        # Records change after they are created, so modified order differs from creation order.
        modified = person.created_at + timedelta(minutes=(person.index * 37) % 600)
        row = contacts.insert(contact_properties(person), at=person.created_at, modified=modified)
        contact_ids.append(row.id)
    for deal in seeder.deals(deals, people):
        created = seeder.start + timedelta(minutes=11 * deal.index)
        row = deal_table.insert(deal_properties(deal), at=created, modified=created + timedelta(hours=deal.index % 72))
        for credited in deal.people:
            sandbox.link(row.id, contact_ids[credited])
    return sandbox
