"""The engine's hard cases against the real vendor sandboxes, in-process (Salesforce <-> HubSpot, Zoho <-> HubSpot).

A restricted Salesforce picklist refuses a value with no native mapping (quarantined before sending, the batch goes on),
an email changed in HubSpot follows the link, a Salesforce delete propagates, a HubSpot merge is never resurrected,
a Zoho org on +05:30 syncs dates with HubSpot without ping-pong, and (slow) more than 10,000 HubSpot records on one
timestamp all arrive. The construction follows test_engine_pairs.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
from closeloop.store.rows import QuarantineStatus

SETTINGS = {
    "salesforce": "{auth_flow: client_credentials, client_id: closeloop-sandbox, "
    "client_secret: closeloop-sandbox-secret, base_url: 'http://crm.test', auth_url: 'http://crm.test'}",
    "zoho": "{client_id: 1000.SANDBOXCLIENTID, client_secret: sandbox-client-secret, "
    "refresh_token: 1000.sandbox.refresh-token, base_url: 'http://crm.test', auth_url: 'http://crm.test'}",
    # archived_check_seconds 0: these scenarios expect a deletion or merge to be seen in the very next cycle
    "hubspot": "{access_token: pat-na1-sandbox-3, base_url: 'http://marketing.test'"
    ", search_requests_per_window: 200, requests_per_window: 2000, archived_check_seconds: 0}",
}

SF_HS_CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contact], upsert: {key: Email, value: email}}
  marketing: {objects: [contacts], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  first_name: {type: string, crm: FirstName, marketing: firstname}
  last_name: {type: string, crm: LastName, marketing: lastname}
  lifecycle:
    type: picklist
    crm: Status__c
    marketing: lifecyclestage
    policy: marketing -> crm
    values:
      crm: {Subscriber: subscriber, Lead: lead, MQL: mql, SQL: sql, Opportunity: opportunity, Customer: customer}
      marketing: {subscriber: subscriber, lead: lead, marketingqualifiedlead: mql, salesqualifiedlead: sql,
                  opportunity: opportunity, customer: customer}
create:
  crm -> marketing: all
  marketing -> crm: {create_filter}
on_delete: {on_delete}
"""

ZOHO_HS_CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contacts], upsert: {key: Email, value: email}}
  marketing: {objects: [contacts], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  last_name: {type: string, crm: Last_Name, marketing: lastname}
create:
  crm -> marketing: all
  marketing -> crm: all
on_delete: unlink
"""

ZOHO_HS_DEALS = """
entity: deal
systems:
  crm: {objects: [Deals], upsert: {key: Closeloop_Id, value: golden_id}}
  marketing: {objects: [deals], upsert: {key: closeloop_id, value: golden_id}}
fields:
  name: {type: string, crm: Deal_Name, marketing: dealname}
  close_date: {type: date, crm: Closing_Date, marketing: closedate}
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
class Scenario:
    """Two sandboxes and an engine syncing them."""

    crm_box: SandboxBase
    mkt_box: SandboxBase
    engine: Engine
    store: Store

    def writes(self) -> int:
        return self.crm_box.stats.records_written + self.mkt_box.stats.records_written

    async def sync(self) -> dict[str, int]:
        outcome = await self.engine.sync("pair")
        return dict(outcome.counts)

    async def settle(self) -> None:
        for _ in range(2):
            await self.sync()

    async def assert_quiet(self) -> None:
        before = self.writes()
        counts = await self.sync()
        assert self.writes() == before, counts

    async def update(self, system: str, obj: str, native_id: str, fields: dict[str, Any]) -> None:
        """Change a record through the vendor's own API, as a user's edit would."""
        (result,) = await self.engine.connector(system).write(
            obj, [WriteRequest("edit", WriteOp.UPDATE, fields, native_id=native_id)]
        )
        assert result.ok, result.error


Build = Callable[..., Awaitable[Scenario]]


@pytest.fixture
async def build(tmp_path: Path) -> AsyncIterator[Build]:
    made: list[Scenario] = []

    async def make(
        crm: str,
        contacts: str,
        deals: str | None = None,
        *,
        people: tuple[int, int] = (8, 8),
        crm_deals: int = 0,
        mkt_deals: int = 0,
    ) -> Scenario:
        installed = registry()
        crm_box = installed.get(crm).sandbox(seed=3, people=people[0], deals=crm_deals, offset=0)  # type: ignore[misc]
        mkt_box = installed.get("hubspot").sandbox(seed=3, people=people[1], deals=mkt_deals, offset=4)  # type: ignore[misc]
        crm_box.base_url, mkt_box.base_url = "http://crm.test", "http://marketing.test"
        for box in (crm_box, mkt_box):
            box.knobs.enforce_limits = False
        (tmp_path / "contacts.yaml").write_text(contacts)
        mappings = "[contacts.yaml]"
        if deals is not None:
            (tmp_path / "deals.yaml").write_text(deals)
            mappings = "[contacts.yaml, deals.yaml]"
        (tmp_path / "closeloop.yaml").write_text(f"""
systems:
  crm: {{connector: {crm}, settings: {SETTINGS[crm]}}}
  marketing: {{connector: hubspot, settings: {SETTINGS["hubspot"]}}}
connections:
  - name: pair
    systems: [crm, marketing]
    mappings: {mappings}
    lookback: 1m
    marketing_system: marketing
loop: {{base_currency: USD}}
""")
        config = load_config(tmp_path / "closeloop.yaml", environ={})
        store = Store.open(tmp_path / "state.db")
        transports = {"crm": httpx.ASGITransport(app=crm_box), "marketing": httpx.ASGITransport(app=mkt_box)}
        scenario = Scenario(crm_box, mkt_box, Engine(config, store, transports=transports), store)
        made.append(scenario)
        return scenario

    yield make
    for scenario in made:
        await scenario.engine.aclose()
        scenario.store.close()


def sf_hs(on_delete: str = "unlink", create_filter: str = "all") -> str:
    return SF_HS_CONTACTS.replace("{on_delete}", on_delete).replace("{create_filter}", create_filter)


def by_email(box: SandboxBase, obj: str, field: str, email: str) -> list[Any]:
    return [row for row in box.table(obj).live() if str(row.fields.get(field) or "").lower() == email.lower()]


def emails(box: SandboxBase, obj: str, field: str) -> list[str]:
    return sorted(str(row.fields.get(field)).lower() for row in box.table(obj).live() if row.fields.get(field))


async def test_restricted_picklist_value_without_a_native_value_is_parked_before_sending(build: Build) -> None:
    s = await build("salesforce", sf_hs())
    await s.settle()
    assert s.store.list_quarantine(QuarantineStatus.OPEN) == []
    contacts = list(s.mkt_box.table("contacts").live())
    bad, good = contacts[0], contacts[1]
    await s.update("marketing", "contacts", bad.id, {"lifecyclestage": "evangelist", "firstname": "Eve"})
    await s.update("marketing", "contacts", good.id, {"lifecyclestage": "customer"})
    outcome = await s.engine.sync("pair")
    assert outcome.exit_code == 1
    quarantined = s.store.list_quarantine(QuarantineStatus.OPEN)
    assert [(q.system, q.code) for q in quarantined] == [("crm", "INVALID_FOR_TARGET")]  # no vendor error: never sent
    assert "'evangelist'" in quarantined[0].reason
    assert "Subscriber, Lead, MQL, SQL, Opportunity, Customer" in quarantined[0].reason
    (bad_crm,) = by_email(s.crm_box, "Contact", "Email", str(bad.fields["email"]))
    (good_crm,) = by_email(s.crm_box, "Contact", "Email", str(good.fields["email"]))
    assert bad_crm.fields["FirstName"] == "Eve"  # the rest of the record went
    assert bad_crm.fields["Status__c"] != "evangelist"
    assert good_crm.fields["Status__c"] == "Customer"  # the rest of the batch went
    await s.sync()
    assert [q.code for q in s.store.list_quarantine(QuarantineStatus.OPEN)] == ["INVALID_FOR_TARGET"]


async def test_email_changed_in_hubspot_follows_the_link_without_a_duplicate(build: Build) -> None:
    s = await build("salesforce", sf_hs())
    await s.settle()
    crm_before, mkt_before = emails(s.crm_box, "Contact", "Email"), emails(s.mkt_box, "contacts", "email")
    row = next(iter(s.mkt_box.table("contacts").live()))
    (crm_row,) = by_email(s.crm_box, "Contact", "Email", str(row.fields["email"]))
    await s.update("marketing", "contacts", row.id, {"email": "New.Address@Example.org"})
    await s.settle()
    assert s.crm_box.table("Contact").get(crm_row.id).fields["Email"].lower() == "new.address@example.org"  # type: ignore[union-attr]
    assert len(emails(s.crm_box, "Contact", "Email")) == len(crm_before)
    assert len(emails(s.mkt_box, "contacts", "email")) == len(mkt_before)
    assert emails(s.crm_box, "Contact", "Email") == emails(s.mkt_box, "contacts", "email")
    await s.assert_quiet()


async def test_salesforce_delete_propagates_to_hubspot(build: Build) -> None:
    s = await build("salesforce", sf_hs(on_delete="propagate"))
    await s.settle()
    crm_row = next(iter(s.crm_box.table("Contact").live()))
    email = str(crm_row.fields["Email"])
    (result,) = await s.engine.connector("crm").write(
        "Contact", [WriteRequest("del", WriteOp.DELETE, native_id=crm_row.id)]
    )
    assert result.ok, result.error
    await s.settle()
    assert by_email(s.mkt_box, "contacts", "email", email) == []
    assert by_email(s.crm_box, "Contact", "Email", email) == []  # not re-created from HubSpot either
    assert emails(s.crm_box, "Contact", "Email") == emails(s.mkt_box, "contacts", "email")
    await s.assert_quiet()


async def test_hubspot_merge_is_never_resurrected(build: Build) -> None:
    s = await build("salesforce", sf_hs())
    await s.settle()
    loser, winner = list(s.mkt_box.table("contacts").live())[:2]
    loser_email = str(loser.fields["email"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=s.mkt_box),
        base_url="http://marketing.test",
        headers={"Authorization": "Bearer pat-na1-sandbox-3"},
    ) as client:
        answer = await client.post(
            "/crm/v3/objects/contacts/merge", json={"primaryObjectId": winner.id, "objectIdToMerge": loser.id}
        )
        assert answer.status_code == 200, answer.text
    await s.settle()
    (crm_copy,) = by_email(s.crm_box, "Contact", "Email", loser_email)  # the CRM's copy stays, a duplicate there
    await s.update("crm", "Contact", crm_copy.id, {"LastName": "Edited After Merge"})
    await s.settle()
    assert by_email(s.mkt_box, "contacts", "email", loser_email) == []  # never re-created
    assert s.mkt_box.table("contacts").get(loser.id) is None  # the loser stays archived
    await s.assert_quiet()


async def test_zoho_org_on_plus_0530_syncs_dates_with_hubspot_without_ping_pong(build: Build) -> None:
    s = await build("zoho", ZOHO_HS_CONTACTS, ZOHO_HS_DEALS, crm_deals=4)
    assert s.crm_box.org_timezone.key == "Asia/Kolkata"  # type: ignore[attr-defined]
    await s.settle()
    await s.assert_quiet()
    deal = next(iter(s.crm_box.table("Deals").live()))
    link = s.store.get_link("crm", "Deals", deal.id)
    assert link is not None
    (hs_link,) = [lk for lk in s.store.links_of(link.golden_id) if lk.system == "marketing"]
    # a date entered in Zoho just after midnight in India is still that day in HubSpot, and back
    await s.update("crm", "Deals", deal.id, {"Closing_Date": "2026-03-08"})
    await s.settle()
    hs_deal = s.mkt_box.table("deals").get(hs_link.native_id)
    assert hs_deal is not None
    closedate = hs_deal.fields["closedate"]
    assert str(closedate).startswith("2026-03-08") or _epoch_day(closedate) == "2026-03-08"
    await s.assert_quiet()
    # a HubSpot close date late in the UTC day (already tomorrow in India) stays that day in Zoho
    await s.update("marketing", "deals", hs_link.native_id, {"closedate": "2026-03-29T23:30:00Z"})
    await s.settle()
    assert s.crm_box.table("Deals").get(deal.id).fields["Closing_Date"] == "2026-03-29"  # type: ignore[union-attr]
    await s.assert_quiet()


def _epoch_day(value: object) -> str:
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC).date().isoformat()
    return text[:10]


@pytest.mark.slow
async def test_more_than_10000_hubspot_records_on_one_timestamp_all_arrive(build: Build) -> None:
    s = await build("salesforce", sf_hs(create_filter="{lifecycle: {in: [customer]}}"), people=(2, 2))
    s.mkt_box.knobs.bucket_limits = {"search": (200, 1.0)}
    stamp = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    table = s.mkt_box.table("contacts")
    for i in range(10_050):
        table.insert({"email": f"mass{i:05d}@example.org", "lastname": f"M{i}", "lifecyclestage": "lead"}, at=stamp)
    await s.sync()
    marketing_links = [r.id for r in table.live() if s.store.get_link("marketing", "contacts", r.id) is not None]
    assert len(marketing_links) == len(table)
    assert s.store.get_cursor("pair", "marketing", "contacts") is not None
    counts = await s.sync()
    assert counts.get("new", 0) == 0
