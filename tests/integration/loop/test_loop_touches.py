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

Marketo (Zoho as the CRM): Ann is made in Zoho 2026-01-05 (paid search) with a deal made 2026-02-01; closeloop
copies her to Marketo 02-02. A Webinar program is made through the Asset API, and her membership status set
through the REST API; the deal closes 2026-03-01 at 10,000.00 USD:

    A  2026-01-05  paid search                  first touch, lead creation, deal creation
    B  2026-02-05  events  "Spring webinar"     Registered
    C  2026-02-12  events  "Spring webinar"     Attended (closed won)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from closeloop_connectors.hubspot.sandbox.forms import PORTAL_ID

from closeloop.loop import Model, build_report
from closeloop.loop.facts import read_facts
from closeloop.loop.report import NO_CAMPAIGN

from .shipped import hubspot_contact, shipped_pair, sync_ok
from .test_loop_vendor_milestones import World, _contact, day, world  # world: the milestone scenarios' pairs

__all__ = ["world"]  # the fixture, re-exported for pytest; each test picks its pair by parameter


@pytest.fixture
async def shipped(tmp_path: Path) -> AsyncIterator[World]:
    async with shipped_pair(tmp_path) as world:
        yield world


async def _open_deal(world: World, *contacts: str) -> str:
    """The scenario's deal, made 2026-02-01 through the CRM's API (10,000.00 USD, closing 03-01), its contacts on it."""
    crm = world.crm
    name, amount, stage, closed, currency = crm.deal_fields
    world.at(day(2, 1))
    fields = {name: "Acme rollout", amount: 10000, stage: crm.stages[0], closed: "2026-03-01", currency: "USD"}
    deal = await world.create(crm.deals, fields)
    for index, contact in enumerate(contacts):
        await world.put_on_deal(deal, contact, first=index == 0)
    return deal


async def _win(world: World, deal: str) -> None:
    """The deal is won 2026-03-01; closeloop syncs 03-05, twice (the second run finds nothing more to do)."""
    world.at(day(3, 1))
    await world.update(world.crm.deals, deal, {world.crm.deal_fields[2]: world.crm.stages[1]})
    world.at(day(3, 5))
    await sync_ok(world, 2)


def _assert_figures(world: World, expected: dict[Model, tuple[dict[str, str], dict[str, str]]]) -> None:
    """The report's total and, per model, its revenue by source and by campaign."""
    report = build_report(read_facts(world.store, day(1, 1), day(4, 1), "USD"))
    assert report.total_revenue == Decimal("10000.00")
    for model, (sources, campaigns) in expected.items():
        assert {r.key: str(r.revenue) for r in report.attributed_for(model, "source")} == sources, model
        assert {r.key: str(r.revenue) for r in report.attributed_for(model, "campaign")} == campaigns, model


async def _salesforce_scenario(world: World) -> None:
    world.at(day(1, 5))
    ann = await _contact(world, "ann@example.com", "paid_search")
    world.at(day(1, 10))
    webinar = await world.create("Campaign", {"Name": "Spring webinar", "Type": "Webinar", "IsActive": True})
    newsletter = await world.create("Campaign", {"Name": "March newsletter", "Type": "Email", "IsActive": True})
    world.at(day(1, 12))
    membership = await world.create("CampaignMember", {"CampaignId": webinar, "ContactId": ann, "Status": "Sent"})
    world.at(day(1, 20))
    bob = await _contact(world, "bob@example.com", "email")
    deal = await _open_deal(world, ann, bob)
    world.at(day(2, 3))
    await world.update("CampaignMember", membership, {"Status": "Responded"})
    world.at(day(2, 5))
    await sync_ok(world)
    world.at(day(2, 15))
    await world.create("CampaignMember", {"CampaignId": newsletter, "ContactId": bob, "Status": "Responded"})
    await _win(world, deal)


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
    _assert_figures(shipped, EXPECTED)
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
    world.at(day(1, 5))
    ann = await _contact(world, "ann@example.com", "paid_search")
    deal = await _open_deal(world, ann)
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
    await _win(world, deal)


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
    _assert_figures(shipped, FORM_EXPECTED)


async def _program_status(world: World, program: int, lead: str, status: str) -> None:
    api = world.engine.connector("marketing").api  # type: ignore[attr-defined]
    body = {"status": status, "input": [{"id": int(lead)}]}
    answer = await api.post(f"/rest/v1/leads/programs/{program}/status.json", body, idempotent=False)
    assert answer["result"] == [{"id": int(lead), "status": "updated"}]


async def _marketo_scenario(world: World) -> None:
    world.at(day(1, 5))
    ann = await _contact(world, "ann@example.com", "paid_search")
    deal = await _open_deal(world, ann)
    world.at(day(2, 2))
    await sync_ok(world)
    lead = next(r.id for r in world.mkt_box.leads.live() if r.fields.get("email") == "ann@example.com")
    world.at(day(2, 3))
    api = world.engine.connector("marketing").api  # type: ignore[attr-defined]
    form = {"name": "Spring webinar", "type": "Event", "channel": "Webinar", "folder": '{"id": 15, "type": "Folder"}'}
    path = "/rest/asset/v1/programs.json"  # the Asset API takes a form body
    made = await api.http.request("POST", path, data=form, idempotent=False, endpoint=path)
    program = made.json()["result"][0]["id"]
    world.at(day(2, 5))
    await _program_status(world, program, lead, "Registered")
    world.at(day(2, 12))
    await _program_status(world, program, lead, "Attended")
    world.at(day(2, 15))
    await sync_ok(world)  # the lead did not change: only the activity log tells its program touches
    golden = world.store.find_links("marketing", "leads", [lead])[lead].golden_id
    stored = world.store.touchpoints_of([golden])[golden]
    programs = [(t.occurred_at, t.channel, t.campaign, t.detail) for t in stored if t.kind == "program"]
    assert programs == [
        (day(2, 5), "events", "Spring webinar", "Registered"),
        (day(2, 12), "events", "Spring webinar", "Attended"),
    ]
    await _win(world, deal)


PROGRAM_EXPECTED = {
    Model.LAST_TOUCH: ({"events": "10000.00"}, {"Spring webinar": "10000.00"}),
    Model.LINEAR: (
        {"paid_search": "3333.34", "events": "6666.66"},
        {NO_CAMPAIGN: "3333.34", "Spring webinar": "6666.66"},
    ),
    Model.W_SHAPED: (
        {"paid_search": "9000.00", "events": "1000.00"},
        {NO_CAMPAIGN: "9000.00", "Spring webinar": "1000.00"},
    ),
}


@pytest.mark.parametrize("world", [("zoho", "marketo")], indirect=True, ids=["zoho-marketo"])
async def test_marketo_program_memberships_are_touches_with_their_programs_channel(world: World) -> None:
    await _marketo_scenario(world)
    _assert_figures(world, PROGRAM_EXPECTED)
