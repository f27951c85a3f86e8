"""Zoho campaign memberships as touches, end to end: the seven-models scenario of ``test_loop_vendor_milestones``
with Zoho as the CRM (paired with HubSpot and with Marketo), plus a Zoho campaign and its member, all made
through the sandboxes' REST APIs; then cycles of the engine, then the report.

The campaign "Spring Webinar" (type Webinar) is made 02-12 and starts 02-15; Ann, made 01-05, is a member.
closeloop first reads the campaign at its first sync (03-05), so the membership is backfilled to the later of
the start and Ann's creation: 02-15. The pooled journey of the deal (made 02-01, won 03-01, 10,000.00 USD):

    A  2026-01-05  paid search  first touch, lead creation
    B  2026-01-20  email        deal creation
    C  2026-02-10  events       (a lead source)
    W  2026-02-15  events       campaign Spring Webinar (Responded)
    D  2026-02-20  direct       closed won

Bob joins the campaign 03-10, after the close, without the campaign being edited: the next day's full re-read
finds him, and his touch is dated by that first sighting, which later reads keep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.loop import Model

from .test_loop_vendor_milestones import World, _report, _seed, day, make_world

PAIRS = [("zoho", "hubspot"), ("zoho", "marketo")]
CAMPAIGN = "Spring Webinar"


@pytest.fixture(params=PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    # closeloop's clock is the vendors': a first sighting is dated in the scenario's time
    async with make_world(request.param, tmp_path, vendor_clock=True) as made:
        yield made


async def _relate(world: World, path: str, other: str, status: str) -> None:
    """A campaign membership through Zoho's related-list API."""
    body = {"data": [{"id": other, "Member_Status": status}]}
    response = await world.api.http.request("PUT", f"http://crm.test/crm/v8/{path}", json=body)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text


async def _webinar(world: World) -> str:
    """The campaign of the module docstring with Ann as a member; the campaign's id."""
    ann = next(r.id for r in world.crm_box.table("Contacts").live() if r.fields["Email"] == "ann@example.com")
    world.at(day(2, 12))
    campaign = await world.create(
        "Campaigns", {"Campaign_Name": CAMPAIGN, "Type": "Webinar", "Start_Date": "2026-02-15"}
    )
    await _relate(world, f"Contacts/{ann}/Campaigns", campaign, "Responded")
    world.at(day(3, 5))
    return campaign


EXPECTED = {  # by source channel, hand-computed from the module docstring's journey
    Model.FIRST_TOUCH: {"paid_search": "10000.00"},
    Model.LAST_TOUCH: {"direct": "10000.00"},
    # 2,000 each of five touches; C and W are both events
    Model.LINEAR: {"events": "4000.00", "direct": "2000.00", "email": "2000.00", "paid_search": "2000.00"},
    # 40 + 40 on A, 20 over B, C, W and D (500 each)
    Model.U_SHAPED: {"paid_search": "8000.00", "events": "1000.00", "direct": "500.00", "email": "500.00"},
    # 30 + 30 on A, 30 on B, 10 over C, W and D: 333.33 each, the leftover cent to the earliest (C)
    Model.W_SHAPED: {"paid_search": "6000.00", "email": "3000.00", "events": "666.67", "direct": "333.33"},
    # 22.5 + 22.5 on A, 22.5 on B, 22.5 on D (closed won), 10 over C and W (500 each)
    Model.FULL_PATH: {"paid_search": "4500.00", "direct": "2250.00", "email": "2250.00", "events": "1000.00"},
    # ages 55, 40, 19, 14 and 9 days at a 7-day half-life: weights 2^(-55/7), 2^(-40/7), 2^(-19/7), 2^(-14/7),
    # 2^(-9/7) = 0.004313, 0.019047, 0.152377, 0.25, 0.410168 (sum 0.835904) -> 51.595, 227.862, 1822.897,
    # 2990.773, 4906.874; the two cents left go to the largest remainders (C, then A); C and W are both events
    Model.TIME_DECAY: {"direct": "4906.87", "events": "4813.67", "email": "227.86", "paid_search": "51.60"},
}
CAMPAIGN_CREDIT = {  # the webinar's own credit (touch W) under each model that gives it any
    Model.LINEAR: "2000.00",
    Model.U_SHAPED: "500.00",
    Model.W_SHAPED: "333.33",
    Model.FULL_PATH: "500.00",
    Model.TIME_DECAY: "2990.77",
}


async def test_a_zoho_campaign_membership_is_a_touch_of_every_model(world: World) -> None:
    await _seed(world)
    await _webinar(world)
    report = await _report(world, day(1, 1), day(4, 1))
    assert (report.total_revenue, report.won_deals) == (Decimal("10000.00"), 1)
    for model, expected in EXPECTED.items():
        assert {r.key: str(r.revenue) for r in report.attributed_for(model, "source")} == expected, model
    for model in Model:
        credit = {r.key: str(r.revenue) for r in report.attributed_for(model, "campaign")}.get(CAMPAIGN)
        assert credit == CAMPAIGN_CREDIT.get(model), model


async def test_a_member_added_later_is_dated_by_its_first_sighting_and_keeps_it(world: World) -> None:
    await _seed(world)
    campaign = await _webinar(world)
    await _report(world, day(1, 1), day(4, 1))
    world.at(day(3, 10).replace(hour=1))
    await world.engine.sync("pair")  # a new day: every campaign is read again (nothing new)
    world.at(day(3, 10).replace(hour=12))
    bob = next(r.id for r in world.crm_box.table("Contacts").live() if r.fields["Email"] == "bob@example.com")
    await _relate(world, f"Campaigns/{campaign}/Contacts", bob, "Sent")
    await world.engine.sync("pair")  # same day: the campaign was not edited, so its members are not read
    (golden,) = {link.golden_id for link in world.store.find_links("crm", "Contacts", [bob]).values()}
    assert not [t for t in world.store.touchpoints_of([golden]).get(golden, []) if t.campaign]
    world.at(day(3, 11).replace(minute=5))
    await world.engine.sync("pair")  # a new day: every campaign is read again, and Bob is seen
    world.at(day(3, 13))
    report = await _report(world, day(1, 1), day(4, 1))  # and read again: the first sighting stands
    touches = [(t.occurred_at, t.detail) for t in world.store.touchpoints_of([golden])[golden] if t.campaign]
    assert touches == [(day(3, 11).replace(minute=5), "Sent")]
    # after the close: no model credits the webinar more than Ann's touch earned it
    assert {r.key: str(r.revenue) for r in report.attributed_for(Model.LINEAR, "campaign")}.get(CAMPAIGN) == "2000.00"
