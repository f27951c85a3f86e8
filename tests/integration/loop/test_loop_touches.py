"""Touches as they happened, from vendor data only: campaign responses made through the vendors' REST APIs become
touches with their own time, channel and campaign, read incrementally, and the models credit them.

Salesforce (the shipped Salesforce and HubSpot pair):

    A  2026-01-05  paid search                  Ann's lead source, at her creation (first touch, lead creation)
    B  2026-01-20  email                        Bob's lead source, at his creation (deal creation: the deal is 02-01)
    C  2026-02-03  events  "Spring webinar"     Ann joined the Webinar campaign 01-12 (Sent), responded 02-03
    D  2026-02-15  email   "March newsletter"   Bob responded to the Email campaign 02-15, after the first sync:
                                                his contact did not change, only the membership stream tells it

The deal (Ann and Bob, one pooled journey) closes 2026-03-01 at 10,000.00 USD.

HubSpot (the same pair): Ann is made in Salesforce 2026-01-05 (paid search) with a deal made 2026-02-01;
closeloop copies her to HubSpot 02-02. She then fills two forms through HubSpot's Forms API, each on a page
tagged with its own UTM values; the deal closes 2026-03-01 at 10,000.00 USD:

    A  2026-01-05  paid search                  first touch, lead creation, deal creation
    B  2026-02-10  paid social  "q1-demo"       Demo request on /demo?utm_source=linkedin&utm_medium=paid_social...
    C  2026-02-20  email        "feb-news"      Pricing on /pricing?utm_source=newsletter... (closed won)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.loop import Model, build_report
from closeloop.loop.facts import read_facts
from closeloop.loop.report import NO_CAMPAIGN
from connectors.hubspot.sandbox.forms import PORTAL_ID

from .shipped import hubspot_contact, shipped_pair, sync_ok
from .test_loop_vendor_milestones import World, _contact, day


@pytest.fixture
async def shipped(tmp_path: Path) -> AsyncIterator[World]:
    async with shipped_pair(tmp_path) as world:
        yield world


async def _salesforce_scenario(world: World) -> None:
    crm = world.crm
    name, amount, stage, closed, currency = crm.deal_fields
    world.at(day(1, 5))
    ann = await _contact(world, "ann@example.com", "paid_search")
    world.at(day(1, 10))
    webinar = await world.create("Campaign", {"Name": "Spring webinar", "Type": "Webinar", "IsActive": True})
    newsletter = await world.create("Campaign", {"Name": "March newsletter", "Type": "Email", "IsActive": True})
    world.at(day(1, 12))
    membership = await world.create("CampaignMember", {"CampaignId": webinar, "ContactId": ann, "Status": "Sent"})
    world.at(day(1, 20))
    bob = await _contact(world, "bob@example.com", "email")
    world.at(day(2, 1))
    deal = await world.create(
        crm.deals, {name: "Acme rollout", amount: 10000, stage: crm.stages[0], closed: "2026-03-01", currency: "USD"}
    )
    await world.put_on_deal(deal, ann, first=True)
    await world.put_on_deal(deal, bob, first=False)
    world.at(day(2, 3))
    await world.update("CampaignMember", membership, {"Status": "Responded"})
    world.at(day(2, 5))
    await sync_ok(world)
    world.at(day(2, 15))
    await world.create("CampaignMember", {"CampaignId": newsletter, "ContactId": bob, "Status": "Responded"})
    world.at(day(3, 1))
    await world.update(crm.deals, deal, {stage: crm.stages[1]})
    world.at(day(3, 5))
    await sync_ok(world, 2)


EXPECTED = {  # (source, campaign) figures, hand-computed from the module docstring's journey
    Model.FIRST_TOUCH: ({"paid_search": "10000.00"}, {NO_CAMPAIGN: "10000.00"}),
    Model.LAST_TOUCH: ({"email": "10000.00"}, {"March newsletter": "10000.00"}),
    Model.LINEAR: (
        {"paid_search": "2500.00", "email": "5000.00", "events": "2500.00"},
        {NO_CAMPAIGN: "5000.00", "Spring webinar": "2500.00", "March newsletter": "2500.00"},
    ),
    # 30 + 30 first touch and lead creation on A, 30 deal creation on B, 10 over C and D
    Model.W_SHAPED: (
        {"paid_search": "6000.00", "email": "3500.00", "events": "500.00"},
        {NO_CAMPAIGN: "9000.00", "Spring webinar": "500.00", "March newsletter": "500.00"},
    ),
}


async def test_salesforce_campaign_responses_are_touches_at_their_time_with_their_campaign(shipped: World) -> None:
    await _salesforce_scenario(shipped)
    report = build_report(read_facts(shipped.store, day(1, 1), day(4, 1), "USD"))
    assert report.total_revenue == Decimal("10000.00")
    for model, (sources, campaigns) in EXPECTED.items():
        assert {r.key: str(r.revenue) for r in report.attributed_for(model, "source")} == sources, model
        assert {r.key: str(r.revenue) for r in report.attributed_for(model, "campaign")} == campaigns, model
    written = shipped.crm_box.stats.records_written + shipped.mkt_box.stats.records_written
    await sync_ok(shipped)  # touches are read, never written: still converged
    assert shipped.crm_box.stats.records_written + shipped.mkt_box.stats.records_written == written


async def _submit(world: World, form: str, email: str, page: str) -> None:
    """A form filled on ``page`` now (the sandbox's clock), through HubSpot's Forms API."""
    api = world.engine.connector("marketing").api  # type: ignore[attr-defined]
    moment = world.mkt_box.clock.frozen
    body = {
        "submittedAt": str(int(moment.timestamp() * 1000)),
        "fields": [{"objectTypeId": "0-1", "name": "email", "value": email}],
        "context": {"pageUri": page, "pageName": form},
    }
    await api.post(f"/submissions/v3/integration/secure/submit/{PORTAL_ID}/{form}", body, idempotent=False)


async def _hubspot_scenario(world: World) -> None:
    crm = world.crm
    name, amount, stage, closed, currency = crm.deal_fields
    world.at(day(1, 5))
    ann = await _contact(world, "ann@example.com", "paid_search")
    world.at(day(2, 1))
    deal = await world.create(
        crm.deals, {name: "Acme rollout", amount: 10000, stage: crm.stages[0], closed: "2026-03-01", currency: "USD"}
    )
    await world.put_on_deal(deal, ann, first=True)
    world.at(day(2, 2))
    await sync_ok(world)
    api = world.engine.connector("marketing").api  # type: ignore[attr-defined]
    demo = (await api.post("/marketing/v3/forms/", {"name": "Demo request"}, idempotent=False))["id"]
    pricing = (await api.post("/marketing/v3/forms/", {"name": "Pricing"}, idempotent=False))["id"]
    world.at(day(2, 10))
    await _submit(
        world, demo, "ann@example.com", f"{SITE}/demo?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q1-demo"
    )
    world.at(day(2, 20))
    await _submit(
        world,
        pricing,
        "ann@example.com",
        f"{SITE}/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=feb-news",
    )
    world.at(day(3, 1))
    await world.update(crm.deals, deal, {stage: crm.stages[1]})
    world.at(day(3, 5))
    await sync_ok(world, 2)


SITE = "https://www.example.com"
FORM_EXPECTED = {
    Model.FIRST_TOUCH: ({"paid_search": "10000.00"}, {NO_CAMPAIGN: "10000.00"}),
    Model.LAST_TOUCH: ({"email": "10000.00"}, {"feb-news": "10000.00"}),
    # thirds: the leftover cent goes to the earliest touch
    Model.LINEAR: (
        {"paid_search": "3333.34", "paid_social": "3333.33", "email": "3333.33"},
        {NO_CAMPAIGN: "3333.34", "q1-demo": "3333.33", "feb-news": "3333.33"},
    ),
    # 30 + 30 + 30 on A (first touch, lead creation, deal creation), 10 over B and C
    Model.W_SHAPED: (
        {"paid_search": "9000.00", "paid_social": "500.00", "email": "500.00"},
        {NO_CAMPAIGN: "9000.00", "q1-demo": "500.00", "feb-news": "500.00"},
    ),
    # 22.5 x 3 on A, 22.5 closed won on C, 10 on B
    Model.FULL_PATH: (
        {"paid_search": "6750.00", "paid_social": "1000.00", "email": "2250.00"},
        {NO_CAMPAIGN: "6750.00", "q1-demo": "1000.00", "feb-news": "2250.00"},
    ),
}


async def test_hubspot_form_submissions_are_touches_with_their_pages_utm_values(shipped: World) -> None:
    await _hubspot_scenario(shipped)
    assert hubspot_contact(shipped, "ann@example.com").fields["num_conversion_events"] == "2"
    report = build_report(read_facts(shipped.store, day(1, 1), day(4, 1), "USD"))
    assert report.total_revenue == Decimal("10000.00")
    for model, (sources, campaigns) in FORM_EXPECTED.items():
        assert {r.key: str(r.revenue) for r in report.attributed_for(model, "source")} == sources, model
        assert {r.key: str(r.revenue) for r in report.attributed_for(model, "campaign")} == campaigns, model
