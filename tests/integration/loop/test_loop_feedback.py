"""Sales feedback on lead quality from vendor data only: leads made and judged through Salesforce's API.

Salesforce on the shipped mappings holds seven leads made in January 2026, each with its lead source; marketing
qualifies six of them in HubSpot (lifecycle stage MQL, through HubSpot's API), then sales sets their lead status
(and, closing one unconverted, a disqualified reason) through Salesforce's API.
``loop.feedback`` reads Working - Contacted as accepted, Closed - Not Converted as rejected, Recycled as recycled.

    lead  source        stage  status                  reason     verdict
    L1    paid search   MQL    Working - Contacted                accepted
    L2    paid search   MQL    Closed - Not Converted  No budget  rejected
    L3    paid search   MQL    Closed - Not Converted  Not a fit  rejected
    L4    email         MQL    Recycled                           recycled
    L5    email         MQL    Open - Not Contacted               pending
    L6    email         Lead   Open - Not Contacted               not handed to sales (no MQL, no verdict)
    L7    events        MQL    Closed - Not Converted             rejected, no reason

Hand-computed (rates are shares of the decided leads, one decimal):

    paid search  handed 3: accepted 1, rejected 2, recycled 0, pending 0  -> 33.3% / 66.7% / 0.0%
    email        handed 2: accepted 0, rejected 0, recycled 1, pending 1  -> 0.0% / 0.0% / 100.0%
    events       handed 1: rejected 1                                     -> 0.0% / 100.0% / 0.0%
    all          handed 6: accepted 1, rejected 3, recycled 1, pending 1  -> 20.0% / 60.0% / 20.0%

L2's reason reaches its HubSpot contact (``lead_rejection_reason``) in the cycle after it is set.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from closeloop.loop import build_report
from closeloop.loop.facts import read_facts
from closeloop.loop.render import Format
from closeloop.loop.render_csv import render_csv
from closeloop.loop.render_json import render_json

from .shipped import hubspot_contact, shipped_pair, sync_ok
from .test_loop_vendor_milestones import World, day

LOOP = """{base_currency: USD, feedback: {status: lead_status, reason: rejection_reason,
  accepted: [Working - Contacted, Closed - Converted], rejected: [Closed - Not Converted], recycled: [Recycled]}}"""
LEADS = [
    ("l1@example.com", "Paid Search", "MQL", "Working - Contacted", None),
    ("l2@example.com", "Paid Search", "MQL", "Closed - Not Converted", "No budget"),
    ("l3@example.com", "Paid Search", "MQL", "Closed - Not Converted", "Not a fit"),
    ("l4@example.com", "Email", "MQL", "Recycled", None),
    ("l5@example.com", "Email", "MQL", "Open - Not Contacted", None),
    ("l6@example.com", "Email", "Lead", "Open - Not Contacted", None),
    ("l7@example.com", "Event", "MQL", "Closed - Not Converted", None),
]


@pytest.fixture
async def shipped(tmp_path: Path) -> AsyncIterator[World]:
    async with shipped_pair(tmp_path, LOOP) as world:
        yield world


async def _judged_leads(world: World) -> None:
    """The leads of the module docstring: made in Salesforce in January, qualified by marketing in HubSpot, then
    judged by sales in Salesforce in February, each step through the vendor's API and followed by a cycle."""
    made = []
    for n, (email, source, _, _, _) in enumerate(LEADS, start=1):
        world.at(day(1, n))
        fields = {"Email": email, "LastName": f"L{n}", "Company": "Acme", "LeadSource": source}
        made.append(await world.create("Lead", fields))
    await sync_ok(world)
    world.at(day(1, 20))
    for email, _, stage, _, _ in LEADS:
        if stage == "MQL":
            contact = hubspot_contact(world, email)
            await _hubspot_patch(world, contact.id, {"lifecyclestage": "marketingqualifiedlead"})
    await sync_ok(world)
    world.at(day(2, 1))
    for lead, (_, _, _, status, reason) in zip(made, LEADS, strict=True):
        await world.update("Lead", lead, {"Status": status, "Disqualified_Reason__c": reason})
    await sync_ok(world)


async def _hubspot_patch(world: World, contact_id: str, properties: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=world.mkt_box)
    async with httpx.AsyncClient(transport=transport, base_url="http://marketing.test") as client:
        response = await client.patch(
            f"/crm/v3/objects/contacts/{contact_id}",
            json={"properties": properties},
            headers={"authorization": "Bearer pat-na1-sandbox-3"},
        )
    assert response.status_code == 200, response.text


async def test_feedback_rates_and_reasons_by_source_from_salesforce_leads(shipped: World) -> None:
    await _judged_leads(shipped)
    feedback = shipped.engine.config.loop.feedback
    facts = read_facts(
        shipped.store, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), "USD", feedback=feedback
    )
    report = build_report(facts)
    assert report.feedback is not None

    by_source = {r.key: r for r in report.feedback.rows_for("source")}
    figures = {
        key: (r.handed, r.accepted, r.rejected, r.recycled, r.pending, r.acceptance_rate, r.rejection_rate)
        for key, r in by_source.items()
    }
    assert figures == {
        "paid_search": (3, 1, 2, 0, 0, Decimal("33.3"), Decimal("66.7")),
        "email": (2, 0, 0, 1, 1, Decimal("0.0"), Decimal("0.0")),
        "events": (1, 0, 1, 0, 0, Decimal("0.0"), Decimal("100.0")),
    }
    assert by_source["email"].recycle_rate == Decimal("100.0")
    total = report.feedback.total
    assert (total.handed, total.decided, total.acceptance_rate, total.rejection_rate, total.recycle_rate) == (
        6, 5, Decimal("20.0"), Decimal("60.0"), Decimal("20.0"),
    )  # fmt: skip
    reasons = [(r.key, r.reason, r.leads) for r in report.feedback.reasons_for("source")]
    assert reasons == [("paid_search", "No budget", 1), ("paid_search", "Not a fit", 1), ("events", "(no reason)", 1)]
    (campaign,) = report.feedback.rows_for("campaign")  # the shipped mappings carry no campaign: one bucket
    assert (campaign.key, campaign.handed, campaign.rejected) == ("(no campaign)", 6, 3)

    data = json.loads(render_json(report))["sales_feedback"]
    assert data["total"]["rejection_pct"] == "60.0"
    assert "sales_feedback,,source,paid_search,rejection_pct,66.7" in render_csv(report)
    assert Format.JSON.value == "json"


async def test_a_rejection_reason_set_in_salesforce_appears_on_the_hubspot_contact(shipped: World) -> None:
    await _judged_leads(shipped)
    assert hubspot_contact(shipped, "l2@example.com").fields["lead_rejection_reason"] == "No budget"
    assert not hubspot_contact(shipped, "l1@example.com").fields.get("lead_rejection_reason")
