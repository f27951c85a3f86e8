"""Partner ids: each side carries the other side's id, so a lost state store re-links instead of duplicating."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.config.loader import load_config
from closeloop.engine.runtime import Engine
from closeloop.store import Store
from tests.fake_connector import FakeVendor, fake_registry, ticking_clock

from .conftest import CONTACTS, DEALS, World, write_config

PARTNER_CONTACTS = CONTACTS.replace(
    "a: {objects: [contacts], upsert: {key: email, value: email}}",
    "a: {objects: [contacts], upsert: {key: email, value: email}, partner_id: b_id}",
).replace(
    "b: {objects: [contacts], upsert: {key: email, value: email}}",
    "b: {objects: [contacts], upsert: {key: email, value: email}, partner_id: a_id}",
)
PARTNER_DEALS = DEALS.replace(
    "a: {objects: [deals], upsert: {key: cl_id, value: golden_id}}",
    "a: {objects: [deals], upsert: {key: cl_id, value: golden_id}, partner_id: b_id}",
).replace(
    "b: {objects: [deals], upsert: {key: cl_id, value: golden_id}}",
    "b: {objects: [deals], upsert: {key: cl_id, value: golden_id}, partner_id: a_id}",
)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The two fake vendors with mappings that name a partner-id field on both sides."""
    clock = ticking_clock()
    vendors = {"a": FakeVendor("a", clock), "b": FakeVendor("b", clock)}
    path = write_config(tmp_path, PARTNER_CONTACTS, PARTNER_DEALS)
    config = load_config(path, registry=fake_registry(vendors), environ={})
    store = Store.open(tmp_path / "state.db", clock=clock)
    w = World(vendors["a"], vendors["b"], Engine(config, store, clock=clock), store, clock, tmp_path)
    yield w
    await w.engine.aclose()
    w.store.close()


async def _lose_store(world: World) -> None:
    """A new container with an empty volume: the state file is gone, the vendors keep their data."""
    await world.engine.aclose()
    world.store.close()
    for leftover in world.path.glob("state.db*"):
        leftover.unlink()
    world.store = Store.open(world.path / "state.db", clock=world.clock)
    world.engine = Engine(world.engine.config, world.store, clock=world.clock)


def _sizes(world: World) -> tuple[int, int, int, int]:
    return (len(world.a.live("contacts")), len(world.b.live("contacts")), len(world.a.live("deals")),
            len(world.b.live("deals")))  # fmt: skip


async def test_each_side_carries_the_other_sides_id(world: World) -> None:
    ann = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    deal = world.a.put("deals", {"title": "Acme", "amount": "10", "currency": "USD", "stage": "Open"})
    for _ in range(2):
        await world.sync()
    b_ann = world.b.find("contacts", "email", "ann@x.com")
    b_deal = world.b.find("deals", "title", "Acme")
    assert b_ann is not None
    assert b_deal is not None
    assert (b_ann.fields["a_id"], ann.fields["b_id"]) == (ann.id, b_ann.id)
    assert (b_deal.fields["a_id"], deal.fields["b_id"]) == (deal.id, b_deal.id)
    # what each side carries is kept in a column of its link, not inside its snapshot
    a_link = world.store.find_links("a", "contacts", [ann.id])[ann.id]
    b_link = world.store.find_links("b", "contacts", [b_ann.id])[b_ann.id]
    assert (a_link.partner_id, b_link.partner_id) == (b_ann.id, ann.id)
    assert not any(name.startswith("~") for link in (a_link, b_link) for name in link.snapshot)
    quiet = world.writes()
    await world.sync()
    assert world.writes() == quiet


async def test_lost_store_relinks_people_and_deals_without_duplicates(world: World) -> None:
    ann = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    world.b.put("contacts", {"email": "bob@x.com", "name": "Bob", "stage": "mql"})
    deal = world.a.put("deals", {"title": "Acme", "amount": "1200", "currency": "USD", "stage": "Won"})
    world.a.links[deal.id] = {ann.id}
    for _ in range(2):
        await world.sync()
    before = _sizes(world)
    assert before == (2, 2, 1, 1)
    revenue = world.b.find("contacts", "email", "ann@x.com").fields["revenue"]  # type: ignore[union-attr]
    for _ in range(3):
        await _lose_store(world)
        await world.sync()
        assert _sizes(world) == before
        assert world.store.list_quarantine() == []
        b_deal = world.b.find("deals", "title", "Acme")
        assert b_deal is not None
        a_link, b_link = world.store.get_link("a", "deals", deal.id), world.store.get_link("b", "deals", b_deal.id)
        assert a_link is not None
        assert b_link is not None
        assert a_link.golden_id == b_link.golden_id
        won = [e for e in world.store.ledger_entries() if e.kind.value == "won"]
        assert [e.amount for e in won] == [Decimal("1200")]  # booked once in the rebuilt ledger, not per side
        b_ann = world.b.find("contacts", "email", "ann@x.com")
        assert b_ann is not None
        assert b_ann.fields["revenue"] == revenue


async def test_partner_id_relinks_a_person_whose_email_changed_while_the_store_was_lost(world: World) -> None:
    ann = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    for _ in range(2):
        await world.sync()
    await _lose_store(world)
    world.a.put("contacts", {"email": "ann@new.com"}, ann.id)
    await world.sync()
    assert len(world.b.live("contacts")) == 1
    assert world.b.live("contacts")[0].fields["email"] == "ann@new.com"


async def test_store_lost_before_the_first_side_got_its_partner_id_relinks_through_the_other(world: World) -> None:
    # After one cycle only the records closeloop created carry a partner id; the originals get theirs a cycle later.
    ann = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    deal = world.a.put("deals", {"title": "Acme", "amount": "5", "currency": "USD", "stage": "Open"})
    world.a.links[deal.id] = {ann.id}
    await world.sync()
    assert "b_id" not in world.a.table("deals")[deal.id].fields
    for _ in range(2):
        await _lose_store(world)
        await world.sync()
        assert _sizes(world) == (1, 1, 1, 1)
    b_deal = world.b.live("deals")[0]
    assert world.a.table("deals")[deal.id].fields["b_id"] == b_deal.id


async def test_setup_creates_the_missing_partner_fields_once(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com"})
    await world.sync()
    await world.sync()
    assert set(world.a.created_fields["contacts"]) == {"b_id"}
    assert set(world.b.created_fields["deals"]) == {"a_id"}
    assert (world.a.calls["create_fields"], world.b.calls["create_fields"]) == (2, 2)  # contacts and deals, once
