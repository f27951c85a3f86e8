"""Salesforce and HubSpot sandboxes on the mappings closeloop ships, with an engine syncing them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from closeloop.config.loader import load_config
from closeloop.connector import registry
from closeloop.engine.runtime import Engine
from closeloop.store import Store

from .test_loop_vendor_milestones import CRMS, MARKETING, SHIPPED, World


@asynccontextmanager
async def shipped_pair(
    tmp_path: Path, loop: str = "{base_currency: USD}", contact_fields: str = ""
) -> AsyncIterator[World]:
    """The pair on the shipped mappings; HubSpot's archived list read every cycle, so a merge shows at once.

    ``loop`` is the configuration's ``loop`` section, as a YAML flow mapping; ``contact_fields`` adds fields
    (YAML lines indented two spaces) to the contacts mapping."""
    crm = CRMS["salesforce"]
    installed = registry()
    crm_box = installed.get("salesforce").sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    mkt_box = installed.get("hubspot").sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    crm_box.base_url, mkt_box.base_url = "http://crm.test", "http://marketing.test"
    for name in ("contacts.yaml", "deals.yaml"):
        (tmp_path / name).write_text((SHIPPED / name).read_text())
    if contact_fields:
        text = (tmp_path / "contacts.yaml").read_text()
        (tmp_path / "contacts.yaml").write_text(text.replace("\nfields:\n", f"\nfields:\n{contact_fields}", 1))
    hubspot = MARKETING["hubspot"].settings[:-1] + ", archived_check_seconds: 0}"
    (tmp_path / "closeloop.yaml").write_text(f"""
systems:
  crm: {{connector: salesforce, settings: {crm.settings}}}
  marketing: {{connector: hubspot, settings: {hubspot}}}
connections:
  - {{name: pair, systems: [crm, marketing], mappings: [contacts.yaml, deals.yaml], lookback: 1m,
      marketing_system: marketing}}
loop: {loop}
""")
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    transports = {"crm": httpx.ASGITransport(app=crm_box), "marketing": httpx.ASGITransport(app=mkt_box)}
    engine = Engine(config, store, transports=transports)
    try:
        yield World(crm, crm_box, mkt_box, engine, store)
    finally:
        await engine.aclose()
        store.close()


async def sync_ok(world: World, times: int = 1) -> None:
    """Sync the pair ``times`` times; each run must end ok."""
    for _ in range(times):
        outcome = await world.engine.sync("pair")
        assert outcome.status.value == "ok", world.store.list_quarantine()


def hubspot_contact(world: World, email: str) -> Any:
    """The live HubSpot contact of ``email``."""
    return next(r for r in world.mkt_box.table("contacts").live() if r.fields.get("email") == email)


@asynccontextmanager
async def custom_pair(
    tmp_path: Path, crm: str, marketing: str, contacts: str, *, loop: str | None = None, limits: bool = True
) -> AsyncIterator[World]:
    """Empty ``crm`` and ``marketing`` sandboxes (HubSpot may be the CRM) synced on the contacts mapping ``contacts``.

    ``loop`` is the configuration's ``loop`` section as a YAML flow mapping; ``limits=False`` lifts the sandboxes'
    rate limits.
    """
    installed = registry()
    crm_box = installed.get(crm).sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    mkt_box = installed.get(marketing).sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    crm_box.base_url, mkt_box.base_url = "http://crm.test", "http://marketing.test"
    for box in (crm_box, mkt_box):
        box.knobs.enforce_limits = limits
    crm_settings = (
        CRMS[crm].settings
        if crm in CRMS
        else MARKETING[crm].settings.replace("http://marketing.test", "http://crm.test")
    )
    (tmp_path / "contacts.yaml").write_text(contacts)
    (tmp_path / "closeloop.yaml").write_text(
        f"""
systems:
  crm: {{connector: {crm}, settings: {crm_settings}}}
  marketing: {{connector: {marketing}, settings: {MARKETING[marketing].settings}}}
connections:
  - {{name: pair, systems: [crm, marketing], mappings: [contacts.yaml], lookback: 1m, marketing_system: marketing}}
"""
        + (f"loop: {loop}\n" if loop else "")
    )
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    transports = {"crm": httpx.ASGITransport(app=crm_box), "marketing": httpx.ASGITransport(app=mkt_box)}
    engine = Engine(config, store, transports=transports)
    try:
        yield World(CRMS.get(crm, CRMS["salesforce"]), crm_box, mkt_box, engine, store)
    finally:
        await engine.aclose()
        store.close()
