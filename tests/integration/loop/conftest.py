"""Two fake systems 'a' (the CRM) and 'b' (the marketing tool), the real engine over them, and the report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.engine.runtime import Engine
from closeloop.store import Store
from closeloop.testing.fake import FakeVendor, fake_registry, ticking_clock

CONFIG = """
state: {path: state.db}
systems:
  a: {connector: fake, settings: {}}
  b: {connector: fake, settings: {}}
connections:
  - name: ab
    systems: [a, b]
    mappings: [contacts.yaml, deals.yaml]
    lookback: 5s
    marketing_system: b
loop:
  base_currency: USD
  rates: {EUR: "1.10"}
"""

CONTACTS = """
entity: contact
systems:
  a: {objects: [contacts], upsert: {key: email, value: email}}
  b: {objects: [contacts], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, a: email, b: email}
  name: {type: string, a: name, b: name}
  created_at: {type: datetime, a: created, b: created, policy: write-once}
  lifecycle_stage:
    type: picklist
    a: stage
    b: stage
    values:
      a: {Lead: lead, MQL: mql, SQL: sql, Customer: customer}
      b: {lead: lead, mql: mql, sql: sql, customer: customer}
  original_source: {type: string, a: source, b: source, policy: write-once}
  utm_source: {type: string, b: utm_source}
  utm_medium: {type: string, b: utm_medium}
  utm_campaign: {type: string, b: utm_campaign}
  first_touch_at: {type: datetime, b: first_touch}
  closed_won_revenue: {type: decimal, from: loop.closed_won_revenue, b: revenue}
  closed_won_deals: {type: number, from: loop.closed_won_deals, b: won_deals}
create:
  a -> b: all
  b -> a: {lifecycle_stage: {in: [mql, sql, customer]}}
on_delete: unlink
"""

DEALS = """
entity: deal
systems:
  a: {objects: [deals], upsert: {key: cl_id, value: golden_id}}
  b: {objects: [deals], upsert: {key: cl_id, value: golden_id}}
fields:
  name: {type: string, a: title, b: title, prefer: a}
  amount: {type: decimal, a: amount, b: amount, prefer: a}
  currency: {type: string, a: currency, b: currency, policy: a -> b}
  close_date: {type: date, a: closed, b: closed, prefer: a}
  created_at: {type: datetime, a: created, b: created, policy: earliest}
  stage:
    type: picklist
    a: stage
    b: stage
    prefer: a
    values:
      a: {Open: open, Won: closed_won}
      b: {open: open, closedwon: closed_won}
create:
  a -> b: all
on_delete: unlink
"""


@dataclass
class World:
    """The two fake vendors, the engine and its store."""

    a: FakeVendor
    b: FakeVendor
    engine: Engine
    store: Store
    config: LoadedConfig

    async def sync(self) -> dict[str, int]:
        """One cycle of connection ab."""
        outcome = await self.engine.sync("ab")
        return dict(outcome.counts)

    def golden_of(self, email: str) -> str:
        """The golden contact id linked to the contact of ``email`` in system a or b."""
        for vendor in (self.a, self.b):
            row = vendor.find("contacts", "email", email)
            link = self.store.get_link(vendor.name, "contacts", row.id) if row else None
            if link is not None:
                return link.golden_id
        raise LookupError(email)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = ticking_clock()
    vendors = {"a": FakeVendor("a", clock), "b": FakeVendor("b", clock)}
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "deals.yaml").write_text(DEALS)
    (tmp_path / "closeloop.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "closeloop.yaml", registry=fake_registry(vendors), environ={})
    store = Store.open(tmp_path / "state.db", clock=clock)
    w = World(vendors["a"], vendors["b"], Engine(config, store, clock=clock), store, config)
    yield w
    await w.engine.aclose()
    w.store.close()
