"""Two fake systems 'a' (the CRM) and 'b' (the marketing tool) in one connection, and an engine over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tests.fake_world as fake_world_module
from tests.fake_world import CONFIG, World, fake_world

__all__ = ["CONFIG", "CONTACTS", "DEALS", "World", "write_config"]

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


def write_config(path: Path, contacts: str = CONTACTS, deals: str = DEALS, config: str = CONFIG) -> Path:
    """This suite's configuration written under ``path`` (other mappings where a test names them)."""
    return fake_world_module.write_config(path, contacts, deals, config)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Two fake systems and the engine over them, with this suite's mappings."""
    async with fake_world(tmp_path, CONTACTS, DEALS) as made:
        yield made
