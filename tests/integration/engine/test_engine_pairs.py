"""The engine over every CRM <-> marketing pair whose connectors exist, against in-process sandboxes.

Each pair converges (a cycle after convergence writes nothing), carries a change each way, and shows a deal won in
the CRM as revenue on the marketing system's contact after one cycle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from closeloop.config.loader import load_config
from closeloop.connector import registry
from closeloop.engine.runtime import Engine
from closeloop.model import WriteOp, WriteRequest
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store


@dataclass(frozen=True)
class Vendor:
    """How one vendor names what the test maps."""

    name: str
    settings: str
    contacts: str
    email: str
    first: str
    last: str
    contact_key: str
    deals: str | None = None
    deal_fields: tuple[str, str, str, str, str] | None = None  # name, amount, stage, close date, currency
    deal_key: str | None = None
    stages: tuple[str, str] | None = None  # an open stage, the won stage
    stage_map: str = ""  # every seeded native stage -> canonical, as a YAML flow mapping
    revenue: str | None = None
    created: str = ""  # the server-set creation time of its contacts and deals


VENDORS = {
    "salesforce": Vendor(
        "salesforce",
        "{auth_flow: client_credentials, client_id: closeloop-sandbox, "
        "client_secret: closeloop-sandbox-secret, base_url: 'http://crm.test', "
        "auth_url: 'http://crm.test'}",
        "Contact",
        "Email",
        "FirstName",
        "LastName",
        "Email",
        "Opportunity",
        ("Name", "Amount", "StageName", "CloseDate", "CurrencyIsoCode"),
        "Closeloop_Id__c",
        ("Prospecting", "Closed Won"),
        created="CreatedDate",
        stage_map="{Prospecting: discovery, Qualification: qualified, Proposal/Price Quote: proposal, "
        "Negotiation/Review: negotiation, Closed Won: won, Closed Lost: lost}",
    ),
    "zoho": Vendor(
        "zoho",
        "{client_id: 1000.SANDBOXCLIENTID, client_secret: sandbox-client-secret, "
        "refresh_token: 1000.sandbox.refresh-token, base_url: 'http://crm.test', auth_url: 'http://crm.test'}",
        "Contacts",
        "Email",
        "First_Name",
        "Last_Name",
        "Email",
        "Deals",
        ("Deal_Name", "Amount", "Stage", "Closing_Date", "Currency"),
        "Closeloop_Id",
        ("Qualification", "Closed Won"),
        created="Created_Time",
        stage_map="{Qualification: discovery, Needs Analysis: qualified, Proposal/Price Quote: proposal, "
        "Negotiation/Review: negotiation, Closed Won: won, Closed Lost: lost}",
    ),
    "hubspot": Vendor(
        "hubspot",
        "{access_token: pat-na1-sandbox-3, base_url: 'http://{side}.test'}",
        "contacts",
        "email",
        "firstname",
        "lastname",
        "email",
        "deals",
        ("dealname", "amount", "dealstage", "closedate", "deal_currency_code"),
        "closeloop_id",
        ("appointmentscheduled", "closedwon"),
        revenue="closeloop_revenue",
        created="createdate",
        stage_map="{appointmentscheduled: discovery, qualifiedtobuy: qualified, presentationscheduled: proposal, "
        "decisionmakerboughtin: negotiation, closedwon: won, closedlost: lost}",
    ),
    "marketo": Vendor(
        "marketo",
        "{client_id: sandbox-client-id, client_secret: sandbox-client-secret, base_url: 'http://marketing.test'}",
        "leads",
        "email",
        "firstName",
        "lastName",
        "email",
        revenue="closeloopRevenue",
        created="createdAt",
    ),
    "pardot": Vendor(
        "pardot",
        "{business_unit_id: 0Uv000000000001AAA, client_id: closeloop-pardot-sandbox, "
        "client_secret: closeloop-pardot-sandbox-secret, base_url: 'http://marketing.test', "
        "auth_url: 'http://marketing.test'}",
        "prospects",
        "email",
        "firstName",
        "lastName",
        "email",
        revenue="closeloop_revenue__c",
        created="createdAt",
    ),
}
PAIRS = [
    ("salesforce", "hubspot"),
    ("zoho", "hubspot"),
    ("salesforce", "marketo"),
    ("zoho", "marketo"),
    ("hubspot", "marketo"),
    ("salesforce", "pardot"),
    ("zoho", "pardot"),
    ("hubspot", "pardot"),
]


def _contacts_yaml(crm: Vendor, mkt: Vendor) -> str:
    return f"""
entity: contact
systems:
  crm: {{objects: [{crm.contacts}], upsert: {{key: {crm.contact_key}, value: email}}}}
  marketing: {{objects: [{mkt.contacts}], upsert: {{key: {mkt.contact_key}, value: email}}}}
match: [email]
fields:
  email: {{type: email, crm: {crm.email}, marketing: {mkt.email}}}
  first_name: {{type: string, crm: {crm.first}, marketing: {mkt.first}}}
  last_name: {{type: string, crm: {crm.last}, marketing: {mkt.last}}}
  revenue: {{type: decimal, from: loop.closed_won_revenue, marketing: {mkt.revenue}}}
  created_at: {{type: datetime, crm: {crm.created}, marketing: {mkt.created}, policy: earliest}}
create:
  crm -> marketing: all
  marketing -> crm: all
on_delete: unlink
"""


def _deals_yaml(crm: Vendor, mkt: Vendor) -> str:
    assert crm.deal_fields
    assert crm.stages
    name, amount, stage, closed, currency = crm.deal_fields
    both = mkt.deals is not None and mkt.deal_fields is not None and mkt.stages is not None
    m = mkt.deal_fields if both and mkt.deal_fields else ("", "", "", "", "")
    side = lambda field: f", marketing: {field}" if both else ""  # noqa: E731 - a tiny formatting helper
    stage_map = f"\n      marketing: {mkt.stage_map}" if both else ""
    systems = (
        f"\n  marketing: {{objects: [{mkt.deals}], upsert: {{key: {mkt.deal_key}, value: golden_id}}}}" if both else ""
    )
    mkt_stage = f"\n    marketing: {m[2]}" if both else ""
    one_way = ", policy: crm -> marketing" if both else ""
    create = "create:\n  crm -> marketing: all\n" if both else ""
    return f"""
entity: deal
systems:
  crm: {{objects: [{crm.deals}], upsert: {{key: {crm.deal_key}, value: golden_id}}}}{systems}
fields:
  name: {{type: string, crm: {name}{side(m[0])}}}
  amount: {{type: decimal, crm: {amount}{side(m[1])}}}
  close_date: {{type: date, crm: {closed}{side(m[3])}}}
  currency: {{type: string, crm: {currency}{side(m[4])}{one_way}}}
  created_at: {{type: datetime, crm: {crm.created}{side(mkt.created)}, policy: earliest}}
  stage:
    type: picklist
    crm: {stage}{mkt_stage}
    prefer: crm
    values:
      crm: {crm.stage_map}{stage_map}
{create}on_delete: unlink
"""


@dataclass
class Pair:
    """Two seeded sandboxes and an engine syncing them."""

    crm: Vendor
    mkt: Vendor
    crm_box: SandboxBase
    mkt_box: SandboxBase
    engine: Engine
    store: Store

    def writes(self) -> int:
        return self.crm_box.stats.records_written + self.mkt_box.stats.records_written


@pytest.fixture(params=PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    crm, mkt = (VENDORS[name] for name in request.param)
    installed = registry()
    crm_box = installed.get(crm.name).sandbox(seed=3, people=12, deals=4, offset=0)  # type: ignore[misc]
    mkt_box = installed.get(mkt.name).sandbox(seed=3, people=12, deals=0, offset=6)  # type: ignore[misc]
    crm_box.base_url, mkt_box.base_url = "http://crm.test", "http://marketing.test"
    for box in (crm_box, mkt_box):
        box.knobs.enforce_limits = False
    (tmp_path / "contacts.yaml").write_text(_contacts_yaml(crm, mkt))
    (tmp_path / "deals.yaml").write_text(_deals_yaml(crm, mkt))
    (tmp_path / "closeloop.yaml").write_text(f"""
systems:
  crm: {{connector: {crm.name}, settings: {crm.settings.replace("{side}", "crm")}}}
  marketing: {{connector: {mkt.name}, settings: {mkt.settings.replace("{side}", "marketing")}}}
connections:
  - name: pair
    systems: [crm, marketing]
    mappings: [contacts.yaml, deals.yaml]
    lookback: 1m
    marketing_system: marketing
loop: {{base_currency: USD, rates: {{EUR: "1.10", GBP: "1.25"}}}}
""")
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    transports = {"crm": httpx.ASGITransport(app=crm_box), "marketing": httpx.ASGITransport(app=mkt_box)}
    engine = Engine(config, store, transports=transports)
    yield Pair(crm, mkt, crm_box, mkt_box, engine, store)
    await engine.aclose()
    store.close()


def _emails(box: SandboxBase, obj: str, field: str) -> set[str]:
    return {str(row.fields.get(field)).lower() for row in box.table(obj).live() if row.fields.get(field)}


async def test_pair_converges_and_then_writes_nothing(pair: Pair) -> None:
    first = await pair.engine.sync("pair")
    assert first.status.value == "ok", pair.store.list_quarantine()
    await pair.engine.sync("pair")
    quiet = pair.writes()
    last = await pair.engine.sync("pair")
    assert pair.writes() == quiet, last.counts
    crm_emails = _emails(pair.crm_box, pair.crm.contacts, pair.crm.email)
    assert crm_emails == _emails(pair.mkt_box, pair.mkt.contacts, pair.mkt.email)
    assert len(crm_emails) == 18  # 12 + 12 seeded people overlapping by 6
    created = [g.fields.get("created_at") for g in pair.store.goldens("contact", "", 100)]
    assert len(created) == 18
    assert all(created), "every contact keeps a vendor's creation time"
    # the copies closeloop made are newer than the seeded records: the seeded (earliest) time is kept
    assert max(str(c) for c in created) < "2026-06"


async def test_pair_carries_a_change_each_way_once(pair: Pair) -> None:
    for _ in range(2):
        await pair.engine.sync("pair")
    crm_row = next(iter(pair.crm_box.table(pair.crm.contacts).live()))
    email = str(crm_row.fields[pair.crm.email]).lower()
    await _update(pair, "crm", pair.crm.contacts, crm_row.id, {pair.crm.first: "Renamed"})
    await pair.engine.sync("pair")
    mkt_row = next(
        r for r in pair.mkt_box.table(pair.mkt.contacts).live() if str(r.fields.get(pair.mkt.email)).lower() == email
    )
    assert mkt_row.fields[pair.mkt.first] == "Renamed"
    await _update(pair, "marketing", pair.mkt.contacts, mkt_row.id, {pair.mkt.last: "Changed"})
    await pair.engine.sync("pair")
    assert pair.crm_box.table(pair.crm.contacts).get(crm_row.id).fields[pair.crm.last] == "Changed"  # type: ignore[union-attr]
    await pair.engine.sync("pair")
    quiet = pair.writes()
    await pair.engine.sync("pair")
    assert pair.writes() == quiet


async def test_pair_won_deal_shows_revenue_on_the_marketing_contact(pair: Pair) -> None:
    await pair.engine.sync("pair")
    assert pair.crm.deals
    assert pair.crm.deal_fields
    assert pair.crm.stages
    stage_field = pair.crm.deal_fields[2]
    deal = next(
        row for row in pair.crm_box.table(pair.crm.deals).live() if row.fields.get(stage_field) != pair.crm.stages[1]
    )
    link = pair.store.get_link("crm", pair.crm.deals, deal.id)
    assert link is not None
    if not pair.store.deal_contacts(link.golden_id):
        pytest.skip("the seeded deal has no contact credited")
    await _update(pair, "crm", pair.crm.deals, deal.id, {stage_field: pair.crm.stages[1]})
    await pair.engine.sync("pair")
    credited = pair.store.deal_contacts(link.golden_id)
    revenues = []
    for credit in credited:
        for lk in pair.store.links_of(credit.contact_golden_id):
            if lk.system == "marketing":
                row = pair.mkt_box.table(pair.mkt.contacts).get(lk.native_id)
                assert row is not None
                revenues.append(Decimal(str(row.fields.get(pair.mkt.revenue) or 0)))
    assert revenues
    assert all(r > 0 for r in revenues)


async def _update(pair: Pair, system: str, obj: str, native_id: str, fields: dict[str, Any]) -> None:
    """Change a record through the vendor's own API, as a user's edit would."""
    (result,) = await pair.engine.connector(system).write(
        obj, [WriteRequest("edit", WriteOp.UPDATE, fields, native_id=native_id)]
    )
    assert result.ok, result.error
