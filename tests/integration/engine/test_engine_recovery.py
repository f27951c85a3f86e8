"""A lost state store never duplicates: the first cycle on an empty store re-links through partner ids.

Salesforce <-> HubSpot on the shipped mappings (config/mappings), Salesforce <-> Marketo and Zoho <-> HubSpot;
every record created through the sandboxes' REST APIs. After the sync converges the store is deleted several
times; each fresh store re-links every person and deal to the same records on the other side, creates nothing,
books each won deal once and leaves the revenue rollups as they were.
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
from closeloop.model import Association, WriteOp, WriteRequest
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store

MAPPINGS = Path(__file__).parents[3] / "config" / "mappings"
SALESFORCE = """{connector: salesforce, settings: {auth_flow: client_credentials, client_id: closeloop-sandbox,
        client_secret: closeloop-sandbox-secret, base_url: 'http://crm.test', auth_url: 'http://crm.test'}}"""
HUBSPOT = """{connector: hubspot, settings: {access_token: pat-na1-sandbox-3, base_url: 'http://marketing.test',
        requests_per_window: 2000, search_requests_per_window: 200}}"""
MARKETO = """{connector: marketo, settings: {client_id: sandbox-client-id, client_secret: sandbox-client-secret,
        base_url: 'http://marketing.test'}}"""
CONFIG = """
systems:
  crm: {crm}
  marketing: {mkt}
connections:
  - name: pair
    systems: [crm, marketing]
    mappings: ['{contacts}', '{deals}']
    lookback: 1m
    marketing_system: marketing
"""
MARKETO_CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contact, Lead], create_as: Contact, upsert: {key: Email, value: email},
        partner_id: Closeloop_Partner_Id__c}
  marketing: {objects: [leads], upsert: {key: email, value: email}, partner_id: closeloopCrmId}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  first_name: {type: string, crm: FirstName, marketing: firstName}
  last_name: {type: string, crm: LastName, marketing: lastName}
  closed_won_revenue: {type: decimal, from: loop.closed_won_revenue, marketing: closeloopRevenue}
create:
  crm -> marketing: all
  marketing -> crm: all
on_delete: unlink
"""
CRM_DEALS = """
entity: deal
systems:
  crm: {objects: [Opportunity]}
fields:
  name: {type: string, crm: Name}
  amount: {type: decimal, crm: Amount}
  close_date: {type: date, crm: CloseDate}
  currency: {type: string, crm: CurrencyIsoCode}
  stage: {type: picklist, crm: StageName, values: {crm: {Closed Won: closed_won, Prospecting: prospecting}}}
on_delete: unlink
"""


ZOHO = """{connector: zoho, settings: {client_id: 1000.SANDBOXCLIENTID, client_secret: sandbox-client-secret,
        refresh_token: 1000.sandbox.refresh-token, base_url: 'http://crm.test', auth_url: 'http://crm.test'}}"""
ZOHO_CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contacts], upsert: {key: Email, value: email}, partner_id: Closeloop_Partner_Id}
  marketing: {objects: [contacts], upsert: {key: email, value: email}, partner_id: closeloop_crm_id}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  first_name: {type: string, crm: First_Name, marketing: firstname}
  last_name: {type: string, crm: Last_Name, marketing: lastname}
  closed_won_revenue: {type: decimal, from: loop.closed_won_revenue, marketing: closeloop_revenue}
create:
  crm -> marketing: all
on_delete: unlink
"""
ZOHO_DEALS = """
entity: deal
systems:
  crm: {objects: [Deals], upsert: {key: Closeloop_Id, value: golden_id}, partner_id: Closeloop_Partner_Id}
  marketing: {objects: [deals], upsert: {key: closeloop_id, value: golden_id}, partner_id: closeloop_crm_id}
fields:
  name: {type: string, crm: Deal_Name, marketing: dealname, prefer: crm}
  amount: {type: decimal, crm: Amount, marketing: amount, prefer: crm}
  close_date: {type: date, crm: Closing_Date, marketing: closedate, prefer: crm}
  stage:
    type: picklist
    crm: Stage
    marketing: dealstage
    prefer: crm
    values:
      crm: {Qualification: open, Closed Won: closed_won}
      marketing: {appointmentscheduled: open, closedwon: closed_won}
create:
  crm -> marketing: all
on_delete: unlink
"""


@dataclass
class Pair:
    """The two sandboxes, the engine syncing them and where its store lives."""

    crm: SandboxBase
    mkt: SandboxBase
    path: Path
    engine: Engine
    store: Store

    async def sync(self) -> None:
        outcome = await self.engine.sync("pair")
        assert outcome.status.value == "ok", (outcome.counts, self.store.list_quarantine())

    async def write(self, system: str, obj: str, request: WriteRequest) -> str:
        """Create or change a record through the vendor's REST API, as a user's tool would."""
        (result,) = await self.engine.connector(system).write(obj, [request])
        assert result.ok, result.error
        return str(result.native_id or request.native_id)

    async def lose_store(self) -> None:
        """A new container on an empty volume: the state file is gone, the vendors keep their data."""
        config = self.engine.config
        await self.engine.aclose()
        self.store.close()
        for leftover in self.path.parent.glob(f"{self.path.name}*"):
            leftover.unlink()
        self.store = Store.open(self.path)
        self.engine = Engine(config, self.store, transports=_transports(self.crm, self.mkt))


def _transports(crm: SandboxBase, mkt: SandboxBase) -> dict[str, httpx.AsyncBaseTransport]:
    return {"crm": httpx.ASGITransport(app=crm), "marketing": httpx.ASGITransport(app=mkt)}


async def _pair(tmp_path: Path, marketing: str, contacts: Path, deals: Path, *, crm_vendor: str = "salesforce") -> Pair:
    installed = registry()
    crm = installed.get(crm_vendor).sandbox(seed=7)  # type: ignore[misc]
    mkt = installed.get(marketing).sandbox(seed=3)  # type: ignore[misc]
    crm.base_url, mkt.base_url = "http://crm.test", "http://marketing.test"
    for box in (crm, mkt):
        box.knobs.enforce_limits = False  # every rebuild re-reads both sides from nothing; limits have own tests
    settings = {"hubspot": HUBSPOT, "marketo": MARKETO}[marketing]
    crm_settings = {"salesforce": SALESFORCE, "zoho": ZOHO}[crm_vendor]
    text = CONFIG.format(crm=crm_settings, mkt=settings, contacts=contacts, deals=deals)
    (tmp_path / "closeloop.yaml").write_text(text)
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    return Pair(crm, mkt, tmp_path / "state.db", Engine(config, store, transports=_transports(crm, mkt)), store)


async def _serve(
    tmp_path: Path, marketing: str, mappings: tuple[str, str] | None, crm_vendor: str = "salesforce"
) -> AsyncIterator[Pair]:
    """A pair over inline (contacts, deals) mappings, or the shipped ones when None; closed afterwards."""
    contacts, deals = MAPPINGS / "contacts.yaml", MAPPINGS / "deals.yaml"
    if mappings is not None:
        contacts, deals = tmp_path / "contacts.yaml", tmp_path / "deals.yaml"
        contacts.write_text(mappings[0])
        deals.write_text(mappings[1])
    pair = await _pair(tmp_path, marketing, contacts, deals, crm_vendor=crm_vendor)
    yield pair
    await pair.engine.aclose()
    pair.store.close()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """Salesforce <-> HubSpot on the shipped mappings."""
    async for serving in _serve(tmp_path, "hubspot", None):
        yield serving


@pytest.fixture
async def marketo_pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """Salesforce <-> Marketo: people both ways, deals (and so revenue) from Salesforce only."""
    async for serving in _serve(tmp_path, "marketo", (MARKETO_CONTACTS, CRM_DEALS)):
        yield serving


@pytest.fixture
async def zoho_pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """Zoho CRM <-> HubSpot: people and deals, closeloop's Zoho fields created through settings/fields."""
    async for serving in _serve(tmp_path, "hubspot", (ZOHO_CONTACTS, ZOHO_DEALS), crm_vendor="zoho"):
        yield serving


def _create(fields: dict[str, Any]) -> WriteRequest:
    return WriteRequest("new", WriteOp.CREATE, fields)


async def _seed(pair: Pair) -> dict[str, str]:
    """People and deals on both sides, through the vendors' APIs; returns native ids by name."""
    ids = {}
    for name in ("Ann", "Bob", "Cy"):
        contact = {"FirstName": name, "LastName": "Crm", "Email": f"{name.lower()}@example.org"}
        ids[name] = await pair.write("crm", "Contact", _create(contact))
    lead = {"FirstName": "Dee", "LastName": "Lead", "Email": "dee@example.org", "Company": "Dee Co"}
    ids["Dee"] = await pair.write("crm", "Lead", _create(lead))
    for name, stage in (("Ann", "lead"), ("Eve", "marketingqualifiedlead"), ("Fay", "subscriber")):
        contact = {
            "firstname": name,
            "lastname": "Mkt",
            "email": f"{name.lower()}@example.org",
            "lifecyclestage": stage,
        }
        ids[f"hs-{name}"] = await pair.write("marketing", "contacts", _create(contact))
    for name, stage, amount in (("Acme", "Closed Won", "1200"), ("Beta", "Prospecting", "800")):
        opportunity = {"Name": name, "StageName": stage, "Amount": amount, "CloseDate": "2026-11-20"}
        ids[name] = await pair.write("crm", "Opportunity", _create(opportunity))
    roles = [Association(ids["Acme"], ids["Ann"]), Association(ids["Beta"], ids["Bob"])]
    assert all(r.ok for r in await pair.engine.connector("crm").associate("Opportunity", roles))
    return ids


def _partners(pair: Pair) -> set[tuple[str, str, str, str]]:
    """Every linked pair of native records: (crm object, crm id, marketing object, marketing id)."""
    found = set()
    for entity in ("contact", "deal"):
        for golden in pair.store.goldens(entity, limit=100):
            links = pair.store.links_of(golden.id)
            crm = [(k.object, k.native_id) for k in links if k.system == "crm"]
            mkt = [(k.object, k.native_id) for k in links if k.system == "marketing"]
            found.update((*c, *m) for c in crm for m in mkt)
    return found


def _revenue(pair: Pair, hubspot_id: str) -> Decimal:
    row = pair.mkt.table("contacts").get(hubspot_id)
    assert row is not None
    return Decimal(str(row.fields.get("closeloop_revenue") or 0))


async def _rebuild(pair: Pair, lost: int, bob: str, partners: set[tuple[str, str, str, str]]) -> None:
    """Lose the store, sync once on the empty one, and find every pair linked again and the ledger rebuilt."""
    await pair.lose_store()
    if lost == 1:  # an email changed while the store was gone: email matching alone would split Bob in two
        change = {"Email": "bob@new.example.org"}
        await pair.write("crm", "Contact", WriteRequest("edit", WriteOp.UPDATE, change, native_id=bob))
    await pair.sync()
    assert _partners(pair) == partners
    assert pair.store.list_quarantine() == []
    won = [(e.kind.value, e.amount) for e in pair.store.ledger_entries()]
    assert won == [("won", Decimal("1200"))]  # the rebuilt ledger books the won deal once, not once per side


async def test_lost_store_relinks_every_person_and_deal_without_duplicates(pair: Pair) -> None:
    ids = await _seed(pair)
    for _ in range(3):
        await pair.sync()
    counts, partners = _live(pair, ("Contact", "Lead", "Opportunity"), ("contacts", "deals")), _partners(pair)
    assert counts == {"Contact": 4, "Lead": 1, "Opportunity": 2, "contacts": 6, "deals": 2}
    assert len(partners) == 7  # five people (Fay, a subscriber, stays in HubSpot) and two deals, linked across
    assert _revenue(pair, ids["hs-Ann"]) == Decimal("1200")
    for lost in range(3):
        await _rebuild(pair, lost, ids["Bob"], partners)
        assert _live(pair, ("Contact", "Lead", "Opportunity"), ("contacts", "deals")) == counts
        assert _revenue(pair, ids["hs-Ann"]) == Decimal("1200")
    bob = [r for r in pair.mkt.table("contacts").live() if r.fields.get("firstname") == "Bob"]
    assert [r.fields["email"] for r in bob] == ["bob@new.example.org"]
    quiet = pair.crm.stats.records_written + pair.mkt.stats.records_written
    await pair.sync()
    assert pair.crm.stats.records_written + pair.mkt.stats.records_written == quiet


def _live(pair: Pair, crm: tuple[str, ...], mkt: tuple[str, ...]) -> dict[str, int]:
    """How many live records each of these objects holds on each side."""
    sides = [(pair.crm, obj) for obj in crm] + [(pair.mkt, obj) for obj in mkt]
    return {obj: len(list(box.table(obj).live())) for box, obj in sides}


async def test_lost_store_relinks_salesforce_and_marketo_people_without_duplicates(marketo_pair: Pair) -> None:
    pair, ids = marketo_pair, {}
    for name in ("Ann", "Bob"):
        contact = {"FirstName": name, "LastName": "Crm", "Email": f"{name.lower()}@example.org"}
        ids[name] = await pair.write("crm", "Contact", _create(contact))
    lead = {"FirstName": "Dee", "LastName": "Lead", "Email": "dee@example.org", "Company": "Dee Co"}
    ids["Dee"] = await pair.write("crm", "Lead", _create(lead))
    for name in ("Ann", "Eve"):
        fields = {"firstName": name, "lastName": "Mkt", "email": f"{name.lower()}@example.org"}
        ids[f"mk-{name}"] = await pair.write(
            "marketing", "leads", WriteRequest("new", WriteOp.UPSERT, fields, upsert_key="email")
        )
    won = {"Name": "Acme", "StageName": "Closed Won", "Amount": "1200", "CloseDate": "2026-11-20"}
    ids["Acme"] = await pair.write("crm", "Opportunity", _create(won))
    assert all(
        r.ok
        for r in await pair.engine.connector("crm").associate("Opportunity", [Association(ids["Acme"], ids["Ann"])])
    )
    for _ in range(3):
        await pair.sync()
    counts, partners = _live(pair, ("Contact", "Lead"), ("leads",)), _partners(pair)
    assert counts == {"Contact": 3, "Lead": 1, "leads": 4}
    assert len(partners) == 4
    ann = pair.mkt.table("leads").get(ids["mk-Ann"])
    assert ann is not None
    assert Decimal(str(ann.fields["closeloopRevenue"])) == Decimal("1200")
    for lost in range(3):
        await _rebuild(pair, lost, ids["Bob"], partners)
        assert _live(pair, ("Contact", "Lead"), ("leads",)) == counts
        assert Decimal(str(ann.fields["closeloopRevenue"])) == Decimal("1200")
    bob = {r.fields.get("email") for r in pair.mkt.table("leads").live() if r.fields.get("firstName") == "Bob"}
    assert bob == {"bob@new.example.org"}


async def test_lost_store_relinks_zoho_and_hubspot_people_and_deals_without_duplicates(zoho_pair: Pair) -> None:
    pair, ids = zoho_pair, {}
    for name in ("Ann", "Bob"):
        contact = {"First_Name": name, "Last_Name": "Crm", "Email": f"{name.lower()}@example.org"}
        ids[name] = await pair.write("crm", "Contacts", _create(contact))
    won = {"Deal_Name": "Acme", "Stage": "Closed Won", "Amount": 1200, "Closing_Date": "2026-11-20"}
    ids["Acme"] = await pair.write("crm", "Deals", _create(won))
    roles = [Association(ids["Acme"], ids["Ann"])]
    assert all(r.ok for r in await pair.engine.connector("crm").associate("Deals", roles))
    for _ in range(3):
        await pair.sync()
    counts, partners = _live(pair, ("Contacts", "Deals"), ("contacts", "deals")), _partners(pair)
    assert counts == {"Contacts": 2, "Deals": 1, "contacts": 2, "deals": 1}
    assert len(partners) == 3
    hs_ann = next(r for r in pair.mkt.table("contacts").live() if r.fields.get("email") == "ann@example.org")
    for _ in range(2):
        await pair.lose_store()
        await pair.sync()
        assert _live(pair, ("Contacts", "Deals"), ("contacts", "deals")) == counts
        assert _partners(pair) == partners
        assert pair.store.list_quarantine() == []
        assert [(e.kind.value, e.amount) for e in pair.store.ledger_entries()] == [("won", Decimal("1200"))]
        assert Decimal(str(hs_ann.fields["closeloop_revenue"])) == Decimal("1200")
