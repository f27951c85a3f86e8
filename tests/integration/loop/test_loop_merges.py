"""A merge of two customers, made through the vendor's merge API, moves the loser's won deals to the winner.

Either vendor: marketing merges the two in HubSpot (the CRM v3 merge API), or sales merges them in Salesforce
(the SOAP API's merge call, the only one Salesforce has) or in Zoho CRM (its Merge Records API), with HubSpot or
Marketo as the marketing side. Zoho names no survivor: closeloop tells it from the deal Zoho moved to Ann.

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
from closeloop.model import WriteOp, WriteRequest
from closeloop.store.rows import LedgerKind, QuarantineStatus

from .shipped import custom_pair, hubspot_contact, shipped_pair, sync_ok
from .test_loop_vendor_milestones import CRMS, MARKETING, World, _contact, _contacts_yaml, day, world

__all__ = ["world"]  # the CRM-and-marketing fixture, used here for the Zoho pairs


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
    assert _rollups(world, "bob@example.com") == ("0", "0")  # Bob's HubSpot copy stands: his deal is Ann's now


async def _zoho_merge(world: World, master: str, child: str) -> None:
    """Merge ``child`` into ``master`` through Zoho's Merge Records API, as a user of the CRM would."""
    url = f"http://crm.test/crm/v8/Contacts/{master}/actions/merge"
    body = {"merge": [{"data": [{"id": child}]}]}
    response = await world.api.http.request("POST", url, json=body)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    assert response.json()["merge"][0]["code"] == "SUCCESS"


def _golden(world: World, contact: str) -> str:
    """The golden record the Zoho contact ``contact`` is (or was) linked to."""
    link = world.store.get_link("crm", "Contacts", contact)
    assert link is not None
    return link.golden_id


def _revenue(world: World, email: str) -> Decimal:
    """closeloop's revenue rollup on the marketing copy of ``email`` (HubSpot contact or Marketo lead)."""
    table, field = (
        ("contacts", "closeloop_revenue") if world.mkt_box.vendor == "hubspot" else ("leads", "closeloopRevenue")
    )
    row = next(r for r in world.mkt_box.table(table).live() if r.fields.get("email") == email)
    return Decimal(str(row.fields.get(field)))


@pytest.mark.parametrize(
    "world", [("zoho", "hubspot"), ("zoho", "marketo")], indirect=True, ids=["zoho-hubspot", "zoho-marketo"]
)
async def test_a_zoho_merge_moves_the_losers_won_deals_to_the_winner_in_one_cycle(world: World) -> None:
    ann, bob = await _seed(world)
    assert _revenue(world, "ann@example.com") == Decimal("119250")
    world.at(day(3, 10))
    await _zoho_merge(world, ann, bob)
    booked = len(world.store.ledger_entries())
    await sync_ok(world)
    assert _revenue(world, "ann@example.com") == Decimal("184500")  # 119,250 + 65,250, written back this cycle
    assert _revenue(world, "bob@example.com") == 0  # Bob's marketing copy stands, his won deal no longer his
    moved = world.store.ledger_entries()[booked:]
    assert [(e.kind, str(e.amount)) for e in moved] == [(LedgerKind.REVERSAL, "-65250"), (LedgerKind.WON, "65250")]
    golden = {"ann": _golden(world, ann), "bob": _golden(world, bob)}
    assert [e.contacts for e in moved] == [(golden["bob"],), (golden["ann"],)]  # Bob's win reversed, re-booked on Ann
    touches = world.store.touchpoints_of([golden["ann"], golden["bob"]])
    # Bob's journey moved to Ann, his original source as a touch of hers; he keeps only his own kept source record
    assert golden["bob"] not in touches
    assert set(world.store.original_sources([golden["bob"]])) == {golden["bob"]}
    assert [t.native_id for t in touches[golden["ann"]] if t.kind == "merged_source"] == [golden["bob"]]
    report = build_report(read_facts(world.store, day(1, 1), day(4, 1), "USD"))
    assert (report.total_revenue, report.won_deals) == (Decimal("184500.00"), 2)
    first = {r.key: str(r.revenue) for r in report.attributed_for(Model.FIRST_TOUCH, "source")}
    last = {r.key: str(r.revenue) for r in report.attributed_for(Model.LAST_TOUCH, "source")}
    assert (first, last) == ({"paid_search": "184500.00"}, {"email": "184500.00"})  # Bob's source is Ann's touch
    written = world.crm_box.stats.records_written + world.mkt_box.stats.records_written
    await sync_ok(world)
    assert world.crm_box.stats.records_written + world.mkt_box.stats.records_written == written
    assert len(world.store.ledger_entries()) == booked + 2  # nothing booked twice


@pytest.mark.parametrize("world", [("zoho", "hubspot")], indirect=True, ids=["zoho-hubspot"])
async def test_a_plain_zoho_deletion_is_no_merge(world: World) -> None:
    """Bob deleted through Zoho's API: no deal of his names another contact and no other contact holds his email,
    so nothing moves to anyone; his won deal stays his."""
    _, bob = await _seed(world)
    world.at(day(3, 10))
    (deleted,) = await world.api.write("Contacts", [WriteRequest("gone", WriteOp.DELETE, {}, native_id=bob)])
    assert deleted.ok, deleted.error
    booked = len(world.store.ledger_entries())
    await sync_ok(world)
    assert len(world.store.ledger_entries()) == booked
    assert _revenue(world, "ann@example.com") == Decimal("119250")
    report = build_report(read_facts(world.store, day(1, 1), day(4, 1), "USD"))
    assert (report.total_revenue, report.won_deals) == (Decimal("184500.00"), 2)
    assert world.store.get_link("crm", "Contacts", bob) is None  # unlinked, as the mapping's on_delete says


@pytest.fixture
async def propagating(tmp_path: Path) -> AsyncIterator[World]:
    """Zoho and HubSpot synced on contacts whose deletions propagate: a deletion in Zoho deletes HubSpot's copy."""
    contacts = _contacts_yaml(CRMS["zoho"], MARKETING["hubspot"]).replace("on_delete: unlink", "on_delete: propagate")
    async with custom_pair(tmp_path, "zoho", "hubspot", contacts) as world:
        yield world


async def test_a_zoho_merge_of_two_contacts_sharing_an_email_deletes_nothing(propagating: World) -> None:
    """Bob, then a second Bob with his email (closeloop holds it back as a duplicate); sales merges the first into
    the second in Zoho. No deal moved, but one contact holds Bob's email: a merge, not a deletion, so HubSpot's copy
    of Bob is not deleted, and the second Bob takes the first one's place."""
    world = propagating
    world.at(day(1, 20))
    bob = await _contact(world, "bob@example.com", "email")
    await sync_ok(world)
    golden, copy = _golden(world, bob), hubspot_contact(world, "bob@example.com").id
    world.at(day(2, 1))
    again = await _contact(world, "bob@example.com", "email")
    outcome = await world.engine.sync("pair")
    assert [q.code for q in world.store.list_quarantine()] == ["DUPLICATE"], outcome
    world.at(day(2, 2))
    await _zoho_merge(world, again, bob)
    await sync_ok(world)
    assert [r.id for r in world.mkt_box.table("contacts").live()] == [
        copy
    ]  # HubSpot's copy neither deleted nor made again
    assert _golden(world, again) == golden  # the survivor is the same person to closeloop
    assert world.store.list_quarantine(QuarantineStatus.OPEN) == []
