"""Two fake systems 'a' (the CRM) and 'b' (the marketing tool) in one connection, and an engine over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from closeloop.config.loader import load_config
from closeloop.engine.runtime import Engine
from closeloop.store import Store
from closeloop.testing.clock import FakeClock
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
  phone: {type: phone, a: phone, b: phone, prefer: a}
  source: {type: string, a: source, b: source, policy: write-once}
  stage:
    type: picklist
    a: stage
    b: stage
    policy: b -> a
    values:
      a: {Lead: lead, MQL: mql, Customer: customer}
      b: {lead: lead, mql: mql, customer: customer}
  revenue: {type: decimal, from: loop.closed_won_revenue, b: revenue}
create:
  a -> b: all
  b -> a: {stage: {in: [mql, customer]}}
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
    clock: FakeClock
    path: Path

    async def sync(self) -> dict[str, int]:
        outcome = await self.engine.sync("ab")
        return dict(outcome.counts)

    def writes(self) -> int:
        return sum(self.a.writes.values()) + sum(self.b.writes.values())

    async def reopen(self) -> None:
        """A fresh process: new store handle and new engine over the same files and vendors."""
        await self.engine.aclose()
        self.store.close()
        self.store = Store.open(self.path / "state.db", clock=self.clock)
        self.engine = Engine(self.engine.config, self.store, clock=self.clock)


def write_config(path: Path, contacts: str = CONTACTS, deals: str = DEALS, config: str = CONFIG) -> Path:
    (path / "contacts.yaml").write_text(contacts)
    (path / "deals.yaml").write_text(deals)
    (path / "closeloop.yaml").write_text(config)
    return path / "closeloop.yaml"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = ticking_clock()
    vendors = {"a": FakeVendor("a", clock), "b": FakeVendor("b", clock)}
    config = load_config(write_config(tmp_path), registry=fake_registry(vendors), environ={})
    store = Store.open(tmp_path / "state.db", clock=clock)
    w = World(vendors["a"], vendors["b"], Engine(config, store, clock=clock), store, clock, tmp_path)
    yield w
    await w.engine.aclose()
    w.store.close()
