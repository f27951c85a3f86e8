"""A merge of two customers, made through the vendor's merge API, moves the loser's won deals to the winner.

Either vendor: marketing merges the two in HubSpot (the CRM v3 merge API), or sales merges them in Salesforce
(the SOAP API's merge call, the only one Salesforce has).

Salesforce holds Ann (created 2026-01-05, paid search) and Bob (2026-01-20, email); each has a won deal:
Ann's 119,250.00 USD closed 2026-03-01, Bob's 65,250.00 USD closed 2026-03-02. closeloop copies both to HubSpot,
then marketing merges Bob into Ann there. After one cycle Ann carries 184,500.00 over 2 won deals, Bob's deal
credits Ann in the ledger (a reversal and a new win, nothing edited), and Bob's original source is a touch of
Ann's journey: under first touch Bob's deal goes to Ann's paid search (01-05), under last touch to email (01-20).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from closeloop_connectors.salesforce.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

from closeloop.loop import Model, build_report
from closeloop.loop.facts import read_facts
from closeloop.store.rows import LedgerKind

from .shipped import hubspot_contact, shipped_pair, sync_ok
from .test_loop_vendor_milestones import World, _contact, day


@pytest.fixture
async def shipped(tmp_path: Path) -> AsyncIterator[World]:
    async with shipped_pair(tmp_path) as world:
        yield world


async def _won_deal(world: World, contact: str, name: str, amount: int, closed: str) -> str:
    crm = world.crm
    name_field, amount_field, stage, close_field, currency = crm.deal_fields
    fields = {name_field: name, amount_field: amount, stage: crm.stages[1], close_field: closed, currency: "USD"}
    deal = await world.create(crm.deals, fields)
    await world.put_on_deal(deal, contact, first=True)
    return deal


async def _seed(world: World) -> tuple[str, str]:
    """Ann and Bob with a won deal each, synced; their Salesforce ids."""
    world.at(day(1, 5))
    ann = await _contact(world, "ann@example.com", "paid_search")
    world.at(day(1, 20))
    bob = await _contact(world, "bob@example.com", "email")
    world.at(day(3, 1))
    await _won_deal(world, ann, "Ann's rollout", 119250, "2026-03-01")
    world.at(day(3, 2))
    await _won_deal(world, bob, "Bob's rollout", 65250, "2026-03-02")
    world.at(day(3, 5))
    await sync_ok(world, 2)
    return ann, bob


def _rollups(world: World, email: str) -> tuple[str, str]:
    row = hubspot_contact(world, email)
    return str(row.fields.get("closeloop_revenue")), str(row.fields.get("closeloop_won_deals"))


async def _after_merge_cycle(world: World) -> None:
    """One cycle after the merge: Ann carries both deals, Bob's deal moved in the ledger (a reversal and a new win),
    and Bob's journey joined Ann's: first touch Ann's paid search (01-05), last touch Bob's email (01-20)."""
    booked = len(world.store.ledger_entries())
    await sync_ok(world)
    assert _rollups(world, "ann@example.com") == ("184500", "2")
    moved = world.store.ledger_entries()[booked:]
    assert [(e.kind, str(e.amount)) for e in moved] == [(LedgerKind.REVERSAL, "-65250"), (LedgerKind.WON, "65250")]
    report = build_report(read_facts(world.store, day(1, 1), day(4, 1), "USD"))
    assert (report.total_revenue, report.won_deals) == (Decimal("184500.00"), 2)
    first = {r.key: str(r.revenue) for r in report.attributed_for(Model.FIRST_TOUCH, "source")}
    last = {r.key: str(r.revenue) for r in report.attributed_for(Model.LAST_TOUCH, "source")}
    assert (first, last) == ({"paid_search": "184500.00"}, {"email": "184500.00"})
    written = world.crm_box.stats.records_written + world.mkt_box.stats.records_written
    await sync_ok(world)
    assert world.crm_box.stats.records_written + world.mkt_box.stats.records_written == written


async def test_a_hubspot_merge_moves_the_losers_won_deals_to_the_winner_in_one_cycle(shipped: World) -> None:
    world = shipped
    await _seed(world)
    assert _rollups(world, "ann@example.com") == ("119250", "1")
    winner, loser = hubspot_contact(world, "ann@example.com").id, hubspot_contact(world, "bob@example.com").id
    world.at(day(3, 10))
    api = world.engine.connector("marketing").api  # type: ignore[attr-defined]
    await api.post(
        "/crm/v3/objects/contacts/merge", {"primaryObjectId": winner, "objectIdToMerge": loser}, idempotent=False
    )
    await _after_merge_cycle(world)


MERGE_ENVELOPE = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"
    xmlns:urn1="urn:sobject.partner.soap.sforce.com">
  <soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></soapenv:Header>
  <soapenv:Body><urn:merge><urn:request>
    <urn:masterRecord><urn1:type>Contact</urn1:type><urn1:Id>{master}</urn1:Id></urn:masterRecord>
    <urn:recordToMergeIds>{loser}</urn:recordToMergeIds>
  </urn:request></urn:merge></soapenv:Body>
</soapenv:Envelope>"""


async def _salesforce_merge(world: World, master: str, loser: str) -> str:
    """Merge ``loser`` into ``master`` through Salesforce's SOAP merge call; the answer's XML."""
    transport = httpx.ASGITransport(app=world.crm_box)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
        form = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID}
        form["client_secret"] = DEFAULT_CLIENT_SECRET
        session = (await http.post("/services/oauth2/token", data=form)).json()["access_token"]
        envelope = MERGE_ENVELOPE.format(session=session, master=master, loser=loser)
        answer = await http.post("/services/Soap/u/61.0", content=envelope, headers={"SOAPAction": '""'})
    assert answer.status_code == 200, answer.text
    return answer.text


async def test_a_salesforce_merge_moves_the_losers_won_deals_to_the_winner_in_one_cycle(shipped: World) -> None:
    world = shipped
    ann, bob = await _seed(world)
    world.at(day(3, 10))
    answer = await _salesforce_merge(world, ann, bob)
    assert "<success>true</success>" in answer
    await _after_merge_cycle(world)
