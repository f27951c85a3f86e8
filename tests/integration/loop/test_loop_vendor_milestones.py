"""Attribution from vendor data only: records made through the sandboxes' REST APIs, then the engine, then the report.

A CRM (Salesforce or Zoho) holds four contacts made weeks apart, each with its lead source, and a deal made
between the second and the third; every contact is put on the deal and the deal is won through the API. HubSpot
is the marketing side: closeloop creates its copies of the contacts and the deal at the first sync, months later.
No touchpoint, creation date or milestone is built by hand: each contact's touch is its lead source at its
creation in the CRM, and the milestones are the vendors' own creation dates and the close date.

The journey (one pooled journey over the deal's contacts), closed 2026-03-01, 10,000.00 USD:

    A  2026-01-05  paid search  first touch, lead creation (the first contact's creation)
    B  2026-01-20  email        deal creation (the deal was created 2026-02-01: the last touch at or before it)
    C  2026-02-10  events       another touch
    D  2026-02-20  direct       closed won (the last touch at or before the close)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from closeloop.config.loader import load_config
from closeloop.connector import Connector, registry
from closeloop.engine.runtime import Engine
from closeloop.loop import FunnelStage, Model, Report, build_report
from closeloop.loop.facts import read_facts
from closeloop.model import Association, WriteOp, WriteRequest, now_utc
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store


@dataclass(frozen=True)
class Crm:
    """How one CRM names what the scenario maps."""

    name: str
    settings: str
    contacts: str
    last_name: str
    created: str
    sources: dict[str, str]  # canonical source -> the CRM's lead source value
    deals: str
    deal_fields: tuple[str, str, str, str, str]  # name, amount, stage, close date, currency
    deal_key: str
    stages: tuple[str, str]  # an open stage, the won stage


CRMS = {
    "salesforce": Crm(
        "salesforce",
        "{auth_flow: client_credentials, client_id: closeloop-sandbox, client_secret: closeloop-sandbox-secret, "
        "base_url: 'http://crm.test', auth_url: 'http://crm.test'}",
        "Contact",
        "LastName",
        "CreatedDate",
        {"paid_search": "Paid Search", "email": "Email", "events": "Event", "direct": "Web"},
        "Opportunity",
        ("Name", "Amount", "StageName", "CloseDate", "CurrencyIsoCode"),
        "Closeloop_Id__c",
        ("Prospecting", "Closed Won"),
    ),
    "zoho": Crm(
        "zoho",
        "{client_id: 1000.SANDBOXCLIENTID, client_secret: sandbox-client-secret, contact_roles: true, "
        "refresh_token: 1000.sandbox.refresh-token, base_url: 'http://crm.test', auth_url: 'http://crm.test'}",
        "Contacts",
        "Last_Name",
        "Created_Time",
        {"paid_search": "Advertisement", "email": "Sales Email Alias", "events": "Trade Show", "direct": "Chat"},
        "Deals",
        ("Deal_Name", "Amount", "Stage", "Closing_Date", "Currency"),
        "Closeloop_Id",
        ("Qualification", "Closed Won"),
    ),
}


@dataclass(frozen=True)
class Marketing:
    """How one marketing tool names what the scenario maps; Marketo holds no deals."""

    name: str
    settings: str
    contacts: str
    last_name: str
    created: str
    source: str
    sources: str  # its source values -> canonical, as a YAML flow mapping
    revenue: str
    deals: bool


MARKETING = {
    "hubspot": Marketing(
        "hubspot",
        "{access_token: pat-na1-sandbox-3, base_url: 'http://marketing.test', search_requests_per_window: 200, "
        "requests_per_window: 2000}",
        "contacts",
        "lastname",
        "createdate",
        "hs_analytics_source",  # read-only at HubSpot: closeloop's copies carry none, so the CRM's source stands
        "{PAID_SEARCH: paid_search, EMAIL_MARKETING: email, OFFLINE: events, DIRECT_TRAFFIC: direct}",
        "closeloop_revenue",
        deals=True,
    ),
    "marketo": Marketing(
        "marketo",
        "{client_id: sandbox-client-id, client_secret: sandbox-client-secret, base_url: 'http://marketing.test'}",
        "leads",
        "lastName",
        "createdAt",
        "leadSource",  # filled by closeloop: Marketo then reports an original source at its copy's creation
        "{Paid Search: paid_search, Email: email, Trade Show: events, Direct: direct}",
        "closeloopRevenue",
        deals=False,
    ),
}
PAIRS = [("salesforce", "hubspot"), ("zoho", "hubspot"), ("zoho", "marketo")]
SHIPPED_PAIR = ("salesforce", "hubspot")
SHIPPED = Path(__file__).parents[3] / "config" / "mappings"
"""Salesforce and HubSpot run on the shipped mappings; the other pairs on the same fields under their names."""


def _contacts_yaml(crm: Crm, mkt: Marketing) -> str:
    sources = ", ".join(f"{native}: {canonical}" for canonical, native in crm.sources.items())
    lead_source = "LeadSource" if crm.name == "salesforce" else "Lead_Source"
    return f"""
entity: contact
systems:
  crm: {{objects: [{crm.contacts}], upsert: {{key: Email, value: email}}}}
  marketing: {{objects: [{mkt.contacts}], upsert: {{key: email, value: email}}}}
match: [email]
fields:
  email: {{type: email, crm: Email, marketing: email}}
  last_name: {{type: string, crm: {crm.last_name}, marketing: {mkt.last_name}}}
  created_at: {{type: datetime, crm: {crm.created}, marketing: {mkt.created}, policy: earliest}}
  original_source:
    type: picklist
    crm: {lead_source}
    marketing: {mkt.source}
    policy: write-once
    values:
      crm: {{{sources}}}
      marketing: {mkt.sources}
  revenue: {{type: decimal, from: loop.closed_won_revenue, marketing: {mkt.revenue}}}
create:
  crm -> marketing: all
on_delete: unlink
"""


def _deals_yaml(crm: Crm, mkt: Marketing) -> str:
    name, amount, stage, closed, currency = crm.deal_fields
    open_stage, won_stage = crm.stages
    hubspot = lambda field: f", marketing: {field}" if mkt.deals else ""  # noqa: E731 - a tiny formatting helper
    systems = "\n  marketing: {objects: [deals], upsert: {key: closeloop_id, value: golden_id}}" if mkt.deals else ""
    stages = "\n      marketing: {appointmentscheduled: open, closedwon: closed_won}" if mkt.deals else ""
    stage_field = "\n    marketing: dealstage" if mkt.deals else ""
    create = "create:\n  crm -> marketing: all\n" if mkt.deals else ""
    return f"""
entity: deal
systems:
  crm: {{objects: [{crm.deals}], upsert: {{key: {crm.deal_key}, value: golden_id}}}}{systems}
fields:
  name: {{type: string, crm: {name}{hubspot("dealname")}, prefer: crm}}
  amount: {{type: decimal, crm: {amount}{hubspot("amount")}, prefer: crm}}
  close_date: {{type: date, crm: {closed}{hubspot("closedate")}, prefer: crm}}
  currency: {{type: string, crm: {currency}{hubspot("deal_currency_code")}, prefer: crm}}
  created_at: {{type: datetime, crm: {crm.created}{hubspot("createdate")}, policy: earliest}}
  stage:
    type: picklist
    crm: {stage}{stage_field}
    prefer: crm
    values:
      crm: {{{open_stage}: open, {won_stage}: closed_won}}{stages}
{create}on_delete: unlink
"""


@dataclass
class World:
    """A CRM and HubSpot sandbox, with clocks the test sets, and an engine syncing them."""

    crm: Crm
    crm_box: SandboxBase
    mkt_box: SandboxBase
    engine: Engine
    store: Store

    def at(self, moment: datetime) -> None:
        """Set both sandboxes' clocks: what is made now is stamped ``moment`` by the vendor."""
        self.crm_box.clock.frozen = self.mkt_box.clock.frozen = moment

    @property
    def api(self) -> Connector:
        return self.engine.connector("crm")

    async def create(self, obj: str, fields: dict[str, Any]) -> str:
        """A record made through the CRM's REST API; its native id."""
        (result,) = await self.api.write(obj, [WriteRequest("new", WriteOp.CREATE, fields)])
        assert result.ok, result.error
        assert result.native_id is not None
        return result.native_id

    async def update(self, obj: str, native_id: str, fields: dict[str, Any]) -> None:
        """A change made through the CRM's REST API."""
        (result,) = await self.api.write(obj, [WriteRequest("edit", WriteOp.UPDATE, fields, native_id=native_id)])
        assert result.ok, result.error

    async def put_on_deal(self, deal_id: str, contact_id: str, *, first: bool) -> None:
        """Link a contact to the deal the CRM's way (a contact role; Zoho's first contact is the deal's lookup)."""
        if self.crm.name == "zoho" and not first:
            url = f"http://crm.test/crm/v8/Deals/{deal_id}/Contact_Roles/{contact_id}"
            payload = {"data": [{"Contact_Role": {"name": "Evaluator"}}]}
            response = await self.api.http.request("PUT", url, json=payload)  # type: ignore[attr-defined]
            assert response.status_code == 200, response.text
            return
        (result,) = await self.api.associate(self.crm.deals, [Association(deal_id, contact_id)])
        assert result.ok, result.error


@asynccontextmanager
async def make_world(pair: tuple[str, str], tmp_path: Path, *, vendor_clock: bool = False) -> AsyncIterator[World]:
    """Empty sandboxes of ``pair`` and an engine over them (the shipped mappings for the shipped pair); with
    ``vendor_clock`` closeloop's clock is the CRM sandbox's, so what closeloop dates falls in the scenario's time."""
    crm, mkt = CRMS[pair[0]], MARKETING[pair[1]]
    installed = registry()
    crm_box = installed.get(crm.name).sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    mkt_box = installed.get(mkt.name).sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    crm_box.base_url, mkt_box.base_url = "http://crm.test", "http://marketing.test"
    for box in (crm_box, mkt_box):
        box.knobs.enforce_limits = False
    if pair == SHIPPED_PAIR:  # the mappings closeloop ships, as they are
        for name in ("contacts.yaml", "deals.yaml"):
            (tmp_path / name).write_text((SHIPPED / name).read_text())
    else:
        (tmp_path / "contacts.yaml").write_text(_contacts_yaml(crm, mkt))
        (tmp_path / "deals.yaml").write_text(_deals_yaml(crm, mkt))
    (tmp_path / "closeloop.yaml").write_text(f"""
systems:
  crm: {{connector: {crm.name}, settings: {crm.settings}}}
  marketing: {{connector: {mkt.name}, settings: {mkt.settings}}}
connections:
  - name: pair
    systems: [crm, marketing]
    mappings: [contacts.yaml, deals.yaml]
    lookback: 1m
    marketing_system: marketing
loop: {{base_currency: USD, rates: {{GBP: "1.27"}}}}
""")
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    transports = {"crm": httpx.ASGITransport(app=crm_box), "marketing": httpx.ASGITransport(app=mkt_box)}
    clock = (lambda: crm_box.clock.now()) if vendor_clock else now_utc
    engine = Engine(config, store, transports=transports, clock=clock)
    yield World(crm, crm_box, mkt_box, engine, store)
    await engine.aclose()
    store.close()


@pytest.fixture(params=PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with make_world(request.param, tmp_path) as made:
        yield made


def day(month: int, dom: int) -> datetime:
    """Midnight UTC on a day of 2026."""
    return datetime(2026, month, dom, tzinfo=UTC)


async def _contact(world: World, email: str, source: str) -> str:
    crm = world.crm
    lead_source = "LeadSource" if crm.name == "salesforce" else "Lead_Source"
    fields = {"Email": email, crm.last_name: email.split("@")[0].title(), lead_source: crm.sources[source]}
    return await world.create(crm.contacts, fields)


async def _seed(world: World) -> str:
    """The scenario of the module docstring, made through the CRM's API on the days it happened; the deal's id."""
    crm = world.crm
    name, amount, stage, closed, currency = crm.deal_fields
    world.at(day(1, 5))
    ann = await _contact(world, "ann@example.com", "paid_search")
    world.at(day(1, 20))
    bob = await _contact(world, "bob@example.com", "email")
    world.at(day(2, 1))
    deal = await world.create(
        crm.deals, {name: "Acme rollout", amount: 10000, stage: crm.stages[0], closed: "2026-03-01", currency: "USD"}
    )
    await world.put_on_deal(deal, ann, first=True)
    await world.put_on_deal(deal, bob, first=False)
    world.at(day(2, 10))
    cid = await _contact(world, "cid@example.com", "events")
    await world.put_on_deal(deal, cid, first=False)
    world.at(day(2, 20))
    dee = await _contact(world, "dee@example.com", "direct")
    await world.put_on_deal(deal, dee, first=False)
    world.at(day(3, 1))
    await world.update(crm.deals, deal, {stage: crm.stages[1]})
    world.at(day(3, 5))  # closeloop's first sync: it creates HubSpot's copies now
    return deal


async def _report(world: World, start: datetime, end: datetime) -> Report:
    for _ in range(2):
        outcome = await world.engine.sync("pair")
        assert outcome.status.value == "ok", world.store.list_quarantine()
    return build_report(read_facts(world.store, start, end, "USD"))


EXPECTED = {  # by source channel, hand-computed from the module docstring's journey
    Model.FIRST_TOUCH: {"paid_search": "10000.00"},
    Model.LAST_TOUCH: {"direct": "10000.00"},
    Model.LINEAR: {"direct": "2500.00", "email": "2500.00", "events": "2500.00", "paid_search": "2500.00"},
    # 40 first touch + 40 lead creation (both A), 20 over B, C and D (the leftover cents go to the earliest)
    Model.U_SHAPED: {"paid_search": "8000.00", "email": "666.67", "events": "666.67", "direct": "666.66"},
    # 30 + 30 on A, 30 deal creation on B, 10 over C and D
    Model.W_SHAPED: {"paid_search": "6000.00", "email": "3000.00", "direct": "500.00", "events": "500.00"},
    # 22.5 + 22.5 on A, 22.5 deal creation on B, 22.5 closed won on D, 10 on C
    Model.FULL_PATH: {"paid_search": "4500.00", "direct": "2250.00", "email": "2250.00", "events": "1000.00"},
    # ages 55, 40, 19 and 9 days at a 7-day half-life: weights 2^(-55/7), 2^(-40/7), 2^(-19/7), 2^(-9/7)
    # -> 73.6101, 325.0887, 2600.7097, 7000.5914; the two cents left go to the largest remainders (C, then B)
    Model.TIME_DECAY: {"direct": "7000.59", "events": "2600.71", "email": "325.09", "paid_search": "73.61"},
}


async def test_models_funnel_and_cycle_from_vendor_data(world: World) -> None:
    await _seed(world)
    report = await _report(world, day(1, 1), day(4, 1))
    quiet = world.crm_box.stats.records_written + world.mkt_box.stats.records_written
    await world.engine.sync("pair")  # creation dates are never written back: converged, nothing more to write
    assert world.crm_box.stats.records_written + world.mkt_box.stats.records_written == quiet
    assert (report.total_revenue, report.won_deals) == (Decimal("10000.00"), 1)
    for model, expected in EXPECTED.items():
        rows = report.attributed_for(model, "source")
        assert {r.key: str(r.revenue) for r in rows} == expected, model
    w_shaped, full_path = (report.attributed_for(m, "source") for m in (Model.W_SHAPED, Model.FULL_PATH))
    assert w_shaped != full_path
    (stats,) = report.deal_stats
    assert (stats.source, str(stats.average_cycle_days), str(stats.average_journey_days)) == (
        "paid_search",
        "28.0",  # deal created 02-01, closed 03-01
        "55.0",  # first touch 01-05
    )


async def test_a_period_before_the_first_sync_counts_contacts_by_their_crm_creation(world: World) -> None:
    await _seed(world)
    january = await _report(world, day(1, 1), day(2, 1))
    assert [(r.source, r.counts[0]) for r in january.funnel] == [("email", 1), ("paid_search", 1)]
    march = build_report(read_facts(world.store, day(3, 1), day(4, 1), "USD"))
    assert march.funnel_total.counts[0] == 0  # HubSpot's copies, made 03-05, do not move the creation


async def _hubspot_deal(world: World, contact_email: str, fields: dict[str, Any]) -> str:
    """A deal made through HubSpot's API only (no CRM copy), on the HubSpot copy of a contact."""
    api = world.engine.connector("marketing")
    (made,) = await api.write("deals", [WriteRequest("new", WriteOp.CREATE, fields)])
    assert made.ok, made.error
    assert made.native_id is not None
    contact = next(r.id for r in world.mkt_box.table("contacts").live() if r.fields.get("email") == contact_email)
    (linked,) = await api.associate("deals", [Association(made.native_id, contact)])
    assert linked.ok, linked.error
    return made.native_id


@pytest.mark.parametrize("world", [("salesforce", "hubspot")], indirect=True, ids=["salesforce-hubspot"])
async def test_a_deal_held_only_by_marketing_keeps_its_currency(world: World) -> None:
    await _seed(world)
    await world.engine.sync("pair")
    won = {"dealname": "UK expansion", "amount": "107250", "dealstage": "closedwon", "closedate": "2026-03-03"}
    await _hubspot_deal(world, "ann@example.com", won | {"deal_currency_code": "GBP"})
    await world.engine.sync("pair")
    entries = [e for e in world.store.ledger_entries() if e.currency != "USD"]
    assert [(e.currency, str(e.amount), str(e.amount_base)) for e in entries] == [("GBP", "107250", "136207.50")]


@pytest.mark.parametrize("world", [("salesforce", "hubspot")], indirect=True, ids=["salesforce-hubspot"])
async def test_a_won_deal_without_a_currency_is_quarantined_not_booked_in_the_base_currency(world: World) -> None:
    await _seed(world)
    await world.engine.sync("pair")
    booked = len(world.store.ledger_entries())
    won = {"dealname": "No currency", "amount": "5000", "dealstage": "closedwon", "closedate": "2026-03-03"}
    await _hubspot_deal(world, "bob@example.com", won)
    outcome = await world.engine.sync("pair")
    assert outcome.status.value == "quarantined"
    assert len(world.store.ledger_entries()) == booked
    (quarantined,) = world.store.list_quarantine()
    assert (quarantined.code, quarantined.entity) == ("UNKNOWN_CURRENCY", "deal")
    assert quarantined.reason.startswith("the deal has no currency")


@pytest.mark.parametrize("world", [("salesforce", "hubspot")], indirect=True, ids=["salesforce-hubspot"])
async def test_customer_since_follows_the_ledger_through_a_reopen(world: World) -> None:
    deal = await _seed(world)
    _, _, stage, closed, _ = world.crm.deal_fields

    async def ann() -> tuple[object, object]:
        await world.engine.sync("pair")
        row = next(r for r in world.mkt_box.table("contacts").live() if r.fields.get("email") == "ann@example.com")
        return row.fields.get("closeloop_customer_since"), row.fields.get("closeloop_first_won_at")

    # customer_since is a date property (as the mapping types it, and as setup creates it), first_won_at a datetime
    assert await ann() == ("2026-03-01", "2026-03-01T00:00:00.000Z")
    world.at(day(3, 10))
    await world.update(world.crm.deals, deal, {stage: world.crm.stages[0]})  # reopened: no win is left
    assert await ann() == (None, None)
    world.at(day(3, 20))
    await world.update(world.crm.deals, deal, {stage: world.crm.stages[1], closed: "2026-03-20"})
    # won again later: the relationship began at the deal's first win, so customer_since keeps 03-01
    assert await ann() == ("2026-03-01", "2026-03-20T00:00:00.000Z")


@pytest.mark.parametrize("world", [("salesforce", "hubspot")], indirect=True, ids=["salesforce-hubspot"])
async def test_stage_entry_dates_come_from_hubspot(world: World) -> None:
    await _seed(world)
    await world.engine.sync("pair")
    ann = next(r.id for r in world.mkt_box.table("contacts").live() if r.fields.get("email") == "ann@example.com")
    world.at(day(3, 12))  # marketing qualifies Ann in HubSpot, which stamps the day
    update = WriteRequest("mql", WriteOp.UPDATE, {"lifecyclestage": "marketingqualifiedlead"}, native_id=ann)
    (result,) = await world.engine.connector("marketing").write("contacts", [update])
    assert result.ok, result.error
    await world.engine.sync("pair")
    facts = read_facts(world.store, day(1, 1), day(2, 1), "USD")
    (ann_facts,) = [c for c in facts.contacts if c.created_at == day(1, 5)]
    # HubSpot's own stamp, carried by the shipped mapping; the customer stage from Ann's first won deal
    assert ann_facts.stage_dates == {FunnelStage.MQL: day(3, 12), FunnelStage.CUSTOMER: day(3, 1)}
