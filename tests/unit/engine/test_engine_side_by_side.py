"""Both systems of a mapping are read side by side, while their pages are applied one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import closeloop.engine.cycle as cycle
from closeloop.engine.cycle import together
from closeloop.model import Cursor, Page
from tests.fake_connector import FakeConnector

from .conftest import World


async def test_one_side_reads_on_while_the_other_side_waits_and_pages_never_interleave(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.a.page_size = 2
    for i in range(5):
        world.a.put("contacts", {"email": f"a{i}@x.com", "name": f"A{i}"})
    world.b.put("contacts", {"email": "b0@x.com", "name": "B0", "stage": "mql"})
    b_reading = asyncio.Event()
    original = FakeConnector.read_changes

    async def read_changes(self: FakeConnector, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        if self.system == "b":
            b_reading.set()
        pages = 0
        async for page in original(self, obj, since):
            if self.system == "a" and pages == 1:
                # a's second page comes only once b is being read: a sequential pull would never get here
                await asyncio.wait_for(b_reading.wait(), timeout=2)
            pages += 1
            yield page

    applying, most = 0, 0
    apply_page = cycle._apply_page

    async def counted(*args: Any) -> None:
        nonlocal applying, most
        applying += 1
        most = max(most, applying)
        try:
            await asyncio.sleep(0)  # give the other side every chance to step in
            await apply_page(*args)
        finally:
            applying -= 1

    monkeypatch.setattr(FakeConnector, "read_changes", read_changes)
    monkeypatch.setattr(cycle, "_apply_page", counted)
    await world.sync()
    assert most == 1
    assert sorted(r.fields["email"] for r in world.b.live("contacts")) == [
        *[f"a{i}@x.com" for i in range(5)],
        "b0@x.com",
    ]


async def test_the_first_failure_cancels_the_other_side_and_is_raised_as_is() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def failing() -> None:
        await asyncio.sleep(0)
        raise LookupError("vendor said no")

    work: list[Callable[[], Awaitable[None]]] = [slow, failing]
    with pytest.raises(LookupError, match="vendor said no"):
        await together(one() for one in work)
    assert cancelled.is_set()


async def test_both_systems_are_written_side_by_side(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    world.b.put("contacts", {"email": "bob@x.com", "name": "Bob", "stage": "mql"})
    writing = {"a": asyncio.Event(), "b": asyncio.Event()}
    original = FakeConnector.write

    async def write(self: FakeConnector, obj: str, batch: Any) -> Any:
        writing[self.system].set()
        other = "b" if self.system == "a" else "a"
        # each side's write answers only once the other side is writing too: one after the other would time out
        await asyncio.wait_for(writing[other].wait(), timeout=2)
        return await original(self, obj, batch)

    monkeypatch.setattr(FakeConnector, "write", write)
    await world.sync()
    assert world.a.find("contacts", "email", "bob@x.com") is not None
    assert world.b.find("contacts", "email", "ann@x.com") is not None


async def test_a_failing_writer_lets_the_other_finish_then_its_failure_is_raised() -> None:
    finished = asyncio.Event()

    async def slow_writes() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    async def budget_spent() -> None:
        raise LookupError("daily budget spent")

    work: list[Callable[[], Awaitable[None]]] = [slow_writes, budget_spent]
    with pytest.raises(LookupError, match="daily budget spent"):
        await together((one() for one in work), cancel_rest=False)
    assert finished.is_set(), "the other side's writes ran to their end"
