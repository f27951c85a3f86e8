"""No lost update, its cost: a batch of updates re-reads its records once; creates and quiet cycles read nothing."""

from __future__ import annotations

import asyncio

from closeloop.engine.recheck import updated_ids
from closeloop.model import WriteOp

from .conftest import World


def test_only_updates_are_rechecked_each_record_once() -> None:
    batch = [(WriteOp.UPDATE, "1"), (WriteOp.UPSERT, None), (WriteOp.UPDATE, "1"), (WriteOp.DELETE, "2"),
             (WriteOp.UPDATE, "3"), (WriteOp.CREATE, None)]  # fmt: skip
    assert updated_ids(batch) == ["1", "3"]


async def test_each_write_batch_of_updates_costs_one_batch_read_and_creates_none(world: World) -> None:
    for i in range(5):
        world.a.put("contacts", {"email": f"p{i}@x.com", "name": f"P{i}"})
    world.b.calls.clear()
    await world.sync()  # five creates in b: nothing there to re-read
    assert world.b.calls["read_by_id"] == 0
    await world.sync()
    world.b.calls.clear()
    await world.sync()  # a quiet cycle writes nothing and reads nothing more
    assert (world.b.calls["read_by_id"], world.b.calls["write"]) == (0, 0)
    for row in list(world.a.live("contacts")):
        world.a.put("contacts", {**row.fields, "name": f"{row.fields['name']} edited"}, row.id)
    world.b.calls.clear()
    counts = await world.sync()
    assert counts["updated:b"] == 5
    assert world.b.calls["write"] == 3  # batches of two
    assert world.b.calls["read_by_id"] == 3  # one re-read per write batch


async def test_an_update_to_a_record_edited_since_the_read_is_merged_not_sent(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    await world.sync()
    await world.sync()
    (a_row,) = world.a.live("contacts")
    (b_row,) = world.b.live("contacts")
    world.a.put("contacts", {**a_row.fields, "name": "Ann from A"}, a_row.id)
    real_read = world.engine.connector("b").read

    async def edited_meanwhile(obj: str, ids: list[str]) -> object:  # a user edits b after the cycle read it
        world.b.put("contacts", {**b_row.fields, "name": "Ann from B"}, b_row.id)
        return await real_read(obj, ids)

    world.engine.connector("b").read = edited_meanwhile  # type: ignore[method-assign]
    counts = await world.sync()
    assert world.b.table("contacts")[b_row.id].fields["name"] == "Ann from B", counts  # not overwritten
    assert counts["moved_before_write:b"] == 1
    world.engine.connector("b").read = real_read  # type: ignore[method-assign]
    await world.sync()
    assert world.a.table("contacts")[a_row.id].fields["name"] == "Ann from B"  # the later edit won
    assert world.b.table("contacts")[b_row.id].fields["name"] == "Ann from B"


async def test_a_moved_record_that_still_owes_another_field_gets_it_in_the_same_drain(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann", "phone": "+15550001"})
    await world.sync()
    await world.sync()
    (a_row,) = world.a.live("contacts")
    (b_row,) = world.b.live("contacts")
    world.a.put("contacts", {**a_row.fields, "phone": "+15550002"}, a_row.id)
    real_read = world.engine.connector("b").read
    edits = {"n": 0}

    async def edited_meanwhile(obj: str, ids: list[str]) -> object:  # b's name edited once, after the cycle read b
        if not edits["n"]:
            edits["n"] += 1
            world.b.put("contacts", {**world.b.table("contacts")[b_row.id].fields, "name": "Ann B"}, b_row.id)
        return await real_read(obj, ids)

    world.engine.connector("b").read = edited_meanwhile  # type: ignore[method-assign]
    counts = await asyncio.wait_for(world.sync(), timeout=30)  # the re-merged write goes out once, no loop
    fields = world.b.table("contacts")[b_row.id].fields
    assert (fields["name"], fields["phone"]) == ("Ann B", "+15550002"), counts
    assert counts["moved_before_write:b"] == 1
