"""The change stream is read one page ahead of the page being applied, in order, and closed when the cycle stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime

import pytest

from closeloop.engine.cycle import read_ahead
from closeloop.model import NativeRecord, Page

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _page(n: int) -> Page:
    return Page((NativeRecord(str(n), AT, {}),))


class Stream:
    """A change stream that notes when each page was asked for and whether it was closed."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.events: list[str] = []
        self.closed = False

    async def __call__(self) -> AsyncIterator[Page]:
        try:
            for n in range(self.pages):
                self.events.append(f"fetch {n}")
                await asyncio.sleep(0)  # a round trip
                yield _page(n)
        finally:
            self.closed = True


async def test_pages_come_in_order_and_the_next_is_fetched_while_one_is_applied() -> None:
    stream = Stream(3)
    seen = []
    async for page in read_ahead(stream()):
        await asyncio.sleep(0)  # the applier awaits (vendor calls before its transaction)
        stream.events.append(f"apply {page.records[0].id}")
        seen.append(page.records[0].id)
    assert seen == ["0", "1", "2"]
    assert stream.events.index("fetch 1") < stream.events.index("apply 0")
    assert stream.closed


async def test_a_cycle_that_stops_mid_stream_cancels_the_page_ahead_and_closes_the_stream() -> None:
    stream = Stream(5)

    async def cycle() -> None:
        async with aclosing(read_ahead(stream())) as pages:
            async for page in pages:
                if page.records[0].id == "1":
                    raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        await cycle()
    assert stream.closed
    assert "fetch 3" not in stream.events  # never more than one page ahead


async def test_deeper_read_ahead_keeps_reading_while_the_applier_waits_but_never_past_its_depth() -> None:
    stream = Stream(6)
    pages = read_ahead(stream(), depth=3)
    first = await anext(pages)
    for _ in range(20):  # the applier waits (for the other side's page, say): the stream reads on meanwhile
        await asyncio.sleep(0)
    assert first.records[0].id == "0"
    assert [e for e in stream.events if e.startswith("fetch")] == ["fetch 0", "fetch 1", "fetch 2", "fetch 3"]
    rest = [page.records[0].id async for page in pages]
    assert rest == ["1", "2", "3", "4", "5"]
    assert stream.closed


async def test_a_failing_stream_raises_where_its_next_page_would_have_been() -> None:
    async def failing() -> AsyncIterator[Page]:
        yield _page(0)
        yield _page(1)
        raise ConnectionError("vendor went away")

    seen: list[str] = []

    async def apply_all() -> None:
        async for page in read_ahead(failing(), depth=3):
            seen.append(page.records[0].id)

    with pytest.raises(ConnectionError, match="vendor went away"):
        await apply_all()
    assert seen == ["0", "1"]
