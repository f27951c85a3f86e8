"""Memory that stays flat in the number of records a cycle touches: the set of touched deals, associations."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import pytest

from closeloop.engine import deals
from closeloop.engine.context import IdSet
from closeloop.model import Association, WriteResult

from .conftest import World


def _ids(n: int, prefix: str = "g") -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(n)]


def test_id_set_is_a_set_iterated_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IdSet, "BUFFER", 3)
    ids = IdSet()
    assert list(ids) == []
    assert len(ids) == 0
    assert "g000001" not in ids
    ids.update(reversed(_ids(10)))
    ids.add("g000004")
    ids.update(["g000004", "g000009"])
    assert len(ids) == 10
    assert "g000001" in ids
    assert "g000010" not in ids
    assert 7 not in ids
    assert list(ids) == _ids(10)
    ids.close()
    assert list(ids) == []
    assert len(ids) == 0


def test_id_set_iteration_takes_ids_added_meanwhile_that_sort_later(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IdSet, "BUFFER", 2)
    ids = IdSet()
    ids.update(["b", "d"])
    seen = []
    for item in ids:
        seen.append(item)
        if item == "b":
            ids.update(["a", "c", "e"])  # "a" and "c" sort before the end of the batch being handed out
    assert seen == ["b", "d", "e"]
    assert list(ids) == ["a", "b", "c", "d", "e"]
    ids.close()


def test_id_set_keeps_ids_out_of_python_memory() -> None:
    ids = IdSet()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ids.update(f"{i:012x}{i * 7919:020x}" for i in range(50_000))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(ids) == 50_000
    # a Python set of these 50,000 ids takes about 6 MB; the buffer holds at most IdSet.BUFFER of them
    assert held < 1_000_000
    ids.close()


async def test_associations_are_worked_out_and_written_a_few_deals_at_a_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deals, "ASSOCIATION_DEALS", 2)
    for i in range(5):
        contact = world.a.put("contacts", {"email": f"c{i}@x.com"})
        deal = world.a.put("deals", {"title": f"D{i}", "amount": "10", "currency": "USD", "stage": "Open"})
        world.a.links[deal.id] = {contact.id}
    connector = world.engine.connector("b")
    real = connector.associate
    calls: list[set[str]] = []

    async def recording(obj: str, links: Sequence[Association]) -> list[WriteResult]:
        calls.append({link.from_id for link in links})
        return await real(obj, links)

    monkeypatch.setattr(connector, "associate", recording)
    await world.sync()
    assert len(calls) == 3
    assert all(len(call) <= 2 for call in calls)
    for i in range(5):
        b_deal, b_contact = world.b.find("deals", "title", f"D{i}"), world.b.find("contacts", "email", f"c{i}@x.com")
        assert b_deal is not None
        assert b_contact is not None
        assert world.b.links[b_deal.id] == {b_contact.id}


async def test_a_deal_waiting_for_its_contact_is_associated_in_a_later_cycle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deals, "ASSOCIATION_DEALS", 1)
    ann = world.a.put("contacts", {"email": "ann@x.com"})
    cy = world.a.put("contacts", {"email": "cy@x.com", "name": "Refused"})
    early = world.a.put("deals", {"title": "Early", "amount": "10", "currency": "USD", "stage": "Open"})
    other = world.a.put("deals", {"title": "Other", "amount": "10", "currency": "USD", "stage": "Open"})
    world.a.links[early.id], world.a.links[other.id] = {cy.id}, {ann.id}
    world.b.reject_values.add("Refused")
    await world.sync()
    b_early = world.b.find("deals", "title", "Early")
    assert b_early is not None
    assert world.b.find("contacts", "email", "cy@x.com") is None
    assert not world.b.links.get(b_early.id)

    world.b.reject_values.clear()
    world.a.put("contacts", {"name": "Cy"}, cy.id)  # the deal does not change: it is found waiting, not touched
    await world.sync()
    b_cy = world.b.find("contacts", "email", "cy@x.com")
    assert b_cy is not None
    assert world.b.links[b_early.id] == {b_cy.id}
