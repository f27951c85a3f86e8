"""The shipped mappings for Account Engagement with a CRM other than Salesforce (HubSpot, Zoho): prospects sync
both ways like any marketing system's contacts, and won deals put revenue on the prospects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from closeloop.config.loader import load_config
from closeloop.connector import registry
from closeloop.engine.runtime import Engine
from closeloop.model import WriteOp, WriteRequest
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store

MAPPINGS = Path(__file__).resolve().parents[3] / "config" / "mappings" / "pardot"
CRMS = {
    # crm: (settings, contact object, email, first name field, deal object, stage field, won stage)
    "hubspot": (
        "{access_token: pat-na1-sandbox-3, base_url: 'http://crm.test'}",
        "contacts", "email", "firstname", "deals", "dealstage", "closedwon",
    ),
    "zoho": (
        "{client_id: 1000.SANDBOXCLIENTID, client_secret: sandbox-client-secret, "
        "refresh_token: 1000.sandbox.refresh-token, base_url: 'http://crm.test', auth_url: 'http://crm.test'}",
        "Contacts", "Email", "First_Name", "Deals", "Stage", "Closed Won",
    ),
}  # fmt: skip
PARDOT = (
    "{business_unit_id: 0Uv000000000001AAA, client_id: closeloop-pardot-sandbox, "
    "client_secret: closeloop-pardot-sandbox-secret, base_url: 'http://marketing.test', auth_url: 'http://marketing.test'}"
)


@dataclass
class Pair:
    """A CRM sandbox, a Pardot sandbox and the engine on the shipped mappings."""

    crm: str
    crm_box: SandboxBase
    pardot: SandboxBase
    engine: Engine
    store: Store


@pytest.fixture(params=sorted(CRMS))
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    crm = request.param
    installed = registry()
    crm_box = installed.get(crm).sandbox(seed=3, people=10, deals=4)  # type: ignore[misc]
    pardot = installed.get("pardot").sandbox(seed=3, people=10, offset=5)  # type: ignore[misc]
    for box in (crm_box, pardot):
        box.knobs.enforce_limits = False
    (tmp_path / "closeloop.yaml").write_text(f"""
systems:
  crm: {{connector: {crm}, settings: {CRMS[crm][0]}}}
  marketing: {{connector: pardot, settings: {PARDOT}}}
connections:
  - name: pair
    systems: [crm, marketing]
    mappings: ['{MAPPINGS / f"{crm}-contacts.yaml"}', '{MAPPINGS / f"{crm}-deals.yaml"}']
    lookback: 1m
    marketing_system: marketing
loop: {{base_currency: USD, rates: {{EUR: "1.10", GBP: "1.25", INR: "0.012"}}}}
""")
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    transports = {"crm": httpx.ASGITransport(app=crm_box), "marketing": httpx.ASGITransport(app=pardot)}
    engine = Engine(config, store, transports=transports)
    yield Pair(crm, crm_box, pardot, engine, store)
    await engine.aclose()
    store.close()


def emails(box: SandboxBase, obj: str, field: str) -> set[str]:
    return {str(row.fields.get(field)).lower() for row in box.table(obj).live() if row.fields.get(field)}


async def test_prospects_and_crm_contacts_are_created_both_ways_then_quiet(pair: Pair) -> None:
    _, contacts, email, *_ = CRMS[pair.crm]
    first = await pair.engine.sync("pair")
    assert first.status.value == "ok", pair.store.list_quarantine()
    await pair.engine.sync("pair")
    assert emails(pair.crm_box, contacts, email) == emails(pair.pardot, "prospects", "email")
    assert len(emails(pair.pardot, "prospects", "email")) == 15  # 10 + 10 people overlapping by 5
    quiet = pair.crm_box.stats.records_written + pair.pardot.stats.records_written
    await pair.engine.sync("pair")
    assert pair.crm_box.stats.records_written + pair.pardot.stats.records_written == quiet


async def test_a_prospect_edit_reaches_the_crm(pair: Pair) -> None:
    _, contacts, email, first_name, *_ = CRMS[pair.crm]
    await pair.engine.sync("pair")
    prospect = next(iter(pair.pardot.table("prospects").live()))
    edit = WriteRequest("edit", WriteOp.UPDATE, {"firstName": "Renamed"}, native_id=prospect.id)
    (done,) = await pair.engine.connector("marketing").write("prospects", [edit])
    assert done.ok, done.error
    await pair.engine.sync("pair")
    wanted = str(prospect.fields["email"]).lower()
    row = next(r for r in pair.crm_box.table(contacts).live() if str(r.fields.get(email)).lower() == wanted)
    assert row.fields[first_name] == "Renamed"


async def test_a_won_crm_deal_shows_revenue_on_its_prospects(pair: Pair) -> None:
    *_, deals, stage, won = CRMS[pair.crm]
    await pair.engine.sync("pair")
    for deal in list(pair.crm_box.table(deals).live()):
        link = pair.store.get_link("crm", deals, deal.id)
        if deal.fields.get(stage) == won or link is None or not pair.store.deal_contacts(link.golden_id):
            continue
        (moved,) = await pair.engine.connector("crm").write(
            deals, [WriteRequest("win", WriteOp.UPDATE, {stage: won}, native_id=deal.id)]
        )
        assert moved.ok, moved.error
        await pair.engine.sync("pair")
        revenue = [
            Decimal(str(pair.pardot.table("prospects").rows[lk.native_id].fields.get("closeloop_revenue__c") or 0))
            for credit in pair.store.deal_contacts(link.golden_id)
            for lk in pair.store.links_of(credit.contact_golden_id)
            if lk.system == "marketing"
        ]
        assert revenue
        assert all(r > 0 for r in revenue)
        return
    pytest.fail("no open seeded deal credits a contact")
