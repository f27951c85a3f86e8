"""Account Engagement (Pardot) as the marketing system, through the engine and the shipped configuration.

Every record comes from the sandboxes' HTTP APIs: the Contact and the Opportunity through Salesforce's REST API,
the prospect and its visitor activities through the Pardot business unit's tracking code (page views) and form
handler (the form post that converts the visitor), as a website produces them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from closeloop_connectors.pardot.sandbox import PardotSandbox
from closeloop_connectors.pardot.sandbox import create_sandbox as pardot_sandbox
from closeloop_connectors.salesforce.sandbox import SalesforceSandbox
from closeloop_connectors.salesforce.sandbox import create_sandbox as salesforce_sandbox
from rich.console import Console

from closeloop.cli.report import report_command
from closeloop.config.loader import load_config
from closeloop.engine.runtime import Engine
from closeloop.model import Association, WriteOp, WriteRequest
from closeloop.store import Store
from closeloop.testing.clock import FakeClock

ROOT = Path(__file__).resolve().parents[3]
URLS = {
    "CRM_BASE_URL": "http://crm.test",
    "CRM_AUTH_URL": "http://crm.test",
    "MARKETING_BASE_URL": "http://marketing.test",
    "MARKETING_AUTH_URL": "http://marketing.test",
}
EMAIL = "ann.lee@acme.example"
FIRST_PAGE = "https://www.example.com/webinar?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q3-webinar-series"
FORM_PAGE = "https://www.example.com/contact"
MODELS = {"first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "full_path", "time_decay"}


@dataclass
class World:
    """Salesforce and Pardot sandboxes, the engine on config/sandbox-pardot.yaml, and a website visitor."""

    crm: SalesforceSandbox
    pardot: PardotSandbox
    engine: Engine
    store: Store
    clock: FakeClock
    browser: httpx.AsyncClient

    async def visit_and_convert(self) -> None:
        """A visitor reads two pages (the first from a LinkedIn ad), then posts the contact form."""
        for page in (FIRST_PAGE, "https://www.example.com/pricing"):
            (await self.browser.get("/analytics", params={"url": page})).raise_for_status()
            self.clock.advance(300)
        form = {"email": EMAIL, "first_name": "Ann", "last_name": "Lee", "company": "Acme"}
        answer = await self.browser.post("/l/1001/contact-us", data=form, headers={"Referer": FORM_PAGE})
        assert answer.status_code == 302
        self.clock.advance(300)

    async def crm_deal(self, amount: int) -> str:
        """A Contact with the visitor's email and an open Opportunity crediting it, through Salesforce's API."""
        crm = self.engine.connector("crm")
        contact = {"Email": EMAIL.upper(), "FirstName": "Ann", "LastName": "Lee"}
        (made,) = await crm.write("Contact", [WriteRequest("c", WriteOp.CREATE, contact)])
        deal = {"Name": "Acme - Annual", "StageName": "Prospecting", "CloseDate": "2026-06-15", "Amount": amount}
        (opportunity,) = await crm.write("Opportunity", [WriteRequest("d", WriteOp.CREATE, deal)])
        assert made.native_id
        assert opportunity.native_id
        (linked,) = await crm.associate("Opportunity", [Association(opportunity.native_id, made.native_id)])
        assert linked.ok, linked.error
        self.clock.advance(300)
        return opportunity.native_id

    async def win(self, opportunity: str) -> None:
        """A sales rep moves the Opportunity to Closed Won."""
        request = WriteRequest("w", WriteOp.UPDATE, {"StageName": "Closed Won"}, native_id=opportunity)
        (result,) = await self.engine.connector("crm").write("Opportunity", [request])
        assert result.ok, result.error
        self.clock.advance(300)

    async def prospect(self) -> dict[str, Any]:
        """The prospect, read through v5."""
        found = await self.engine.connector("marketing").search("prospects", "email", [EMAIL])
        assert len(found) == 1
        return dict(found[0].fields)


@pytest.fixture
async def world(tmp_path: Path, clock: FakeClock) -> AsyncIterator[World]:
    crm, pardot = salesforce_sandbox(seed=1, clock=clock), pardot_sandbox(seed=1, clock=clock)
    pardot.add_form_handler("contact-us", "Contact Us", "spring-launch", "https://www.example.com/thanks")
    config = load_config(ROOT / "config" / "sandbox-pardot.yaml", environ=URLS)
    store = Store.open(tmp_path / "state.db", clock=clock)
    transports = {"crm": httpx.ASGITransport(app=crm), "marketing": httpx.ASGITransport(app=pardot)}
    engine = Engine(config, store, transports=transports, clock=clock)
    browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=pardot), base_url="https://go.example.com")
    yield World(crm, pardot, engine, store, clock, browser)
    await browser.aclose()
    await engine.aclose()
    store.close()


def attributed(world: World, capsys: pytest.CaptureFixture[str], dimension: str) -> dict[str, dict[str, str]]:
    """Attributed revenue per model and key, from ``closeloop report --format json``."""
    args = argparse.Namespace(model="all", format="json", out=None, since="2026-01-01", until="2026-06-30", spend=None)
    console = Console(width=200, color_system=None, force_terminal=False)
    assert report_command(world.engine.config, world.store, args, clock=world.clock, console=console) == 0
    found: dict[str, dict[str, str]] = {}
    for row in json.loads(capsys.readouterr().out)["attributed"]:
        if row["dimension"] == dimension:
            found.setdefault(row["model"], {})[row["key"]] = row["revenue"]
    return found


async def test_won_deal_shows_revenue_on_the_prospect_after_one_cycle(world: World) -> None:
    await world.visit_and_convert()
    opportunity = await world.crm_deal(48_000)
    first = await world.engine.sync("crm-marketing")
    assert first.status.value == "ok", world.store.list_quarantine()
    assert (await world.prospect())["closeloop_revenue__c"] is None
    await world.win(opportunity)
    await world.engine.sync("crm-marketing")
    prospect = await world.prospect()
    assert Decimal(str(prospect["closeloop_revenue__c"])) == Decimal(48_000)
    assert prospect["closeloop_won_deals__c"] == 1
    assert prospect["closeloop_first_won_at__c"] == "2026-06-15"


async def test_beside_the_native_connector_only_closed_loop_fields_are_written(world: World) -> None:
    await world.visit_and_convert()
    opportunity = await world.crm_deal(12_500)
    ours = world.crm.stats.records_written  # the Contact, the Opportunity and its contact role
    await world.engine.sync("crm-marketing")
    assert world.crm.stats.records_written == ours  # closeloop wrote nothing to Salesforce
    before = await world.prospect()
    await world.win(opportunity)
    await world.engine.sync("crm-marketing")
    after = await world.prospect()
    changed = {name for name in after if after[name] != before.get(name)} - {"updatedAt"}
    assert changed == {
        "closeloop_revenue__c",
        "closeloop_won_deals__c",
        "closeloop_first_won_at__c",
        "closeloop_last_won_at__c",
        "closeloop_customer_since__c",
    }
    quiet = world.pardot.stats.records_written
    await world.engine.sync("crm-marketing")
    assert world.pardot.stats.records_written == quiet
    assert world.crm.stats.records_written == ours + 1  # the test's own win


async def test_visitor_activity_touches_appear_in_the_report_under_every_model(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    await world.visit_and_convert()
    opportunity = await world.crm_deal(30_000)
    await world.engine.sync("crm-marketing")
    await world.win(opportunity)
    await world.engine.sync("crm-marketing")
    prospect_id = str((await world.prospect())["id"])
    link = world.store.get_link("marketing", "prospects", prospect_id)
    assert link is not None
    contact = link.golden_id
    kinds = sorted(t.kind for t in world.store.touchpoints_of([contact])[contact] if t.system == "marketing")
    assert kinds == ["form_fill", "original_source", "visit", "visit"]
    campaigns = attributed(world, capsys, "campaign")
    assert set(campaigns) == MODELS
    for model, revenue in campaigns.items():
        assert sum(Decimal(v) for v in revenue.values()) == Decimal("30000.00"), model
    # The form fill is the last touch (the form handler's campaign); the ad's page view came first.
    assert campaigns["last_touch"] == {"spring-launch": "30000.00"}
    assert campaigns["first_touch"] == {"q3-webinar-series": "30000.00"}
    # Four touches: the prospect's original source and first page (the ad), the pricing page, the form fill.
    linear = {"q3-webinar-series": "15000.00", "(no campaign)": "7500.00", "spring-launch": "7500.00"}
    assert campaigns["linear"] == linear
