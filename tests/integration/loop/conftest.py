"""Two fake systems 'a' (the CRM) and 'b' (the marketing tool), the real engine over them, and the report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fake_world import World, fake_world

__all__ = ["CONTACTS", "DEALS", "World"]

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


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Two fake systems and the engine over them, with this suite's mappings."""
    async with fake_world(tmp_path, CONTACTS, DEALS) as made:
        yield made
