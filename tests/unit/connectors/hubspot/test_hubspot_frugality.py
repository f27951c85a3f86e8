"""API frugality of the HubSpot connector against its sandbox: the fewest calls per cycle, and nothing missed for it.

A quiet cycle is one search per object; search pages hold 200; touchpoints come with the change stream; the
archived list (deletions, merges) is read at most every ``archived_check_seconds`` without losing a deletion.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from closeloop_connectors.hubspot import HubSpotConnector, HubSpotSettings
from closeloop_connectors.hubspot.adapter import TOUCH_CACHE_PAGES
from closeloop_connectors.hubspot.sandbox import HubSpotSandbox, create_sandbox
from closeloop_connectors.hubspot.schema import TOUCH_PROPERTIES

from closeloop.model import Cursor, NativeRecord, Page
from closeloop.testing.clock import FakeClock

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # after every seeded record
LOOKBACK = timedelta(minutes=1)
ARCHIVED = {"contacts": "GET /crm/v3/objects/contacts?archived", "deals": "GET /crm/v3/objects/deals?archived"}
SEARCH = {"contacts": "POST /crm/v3/objects/contacts/search", "deals": "POST /crm/v3/objects/deals/search"}
BATCH_READ = "POST /crm/v3/objects/contacts/batch/read"
SUBMISSIONS = "GET /contacts/v1/contact/vids/batch/"  # form submissions: one call per 100 contacts that converted


@dataclass
class Calls:
    """The connector's calls as ``METHOD path`` (``?archived`` marks the archived list), and its JSON bodies."""

    seen: Counter[str] = field(default_factory=Counter)
    bodies: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(self, _system: str, response: httpx.Response) -> None:
        request = response.request
        suffix = "?archived" if request.url.params.get("archived") == "true" else ""
        call = f"{request.method} {request.url.path}{suffix}"
        self.seen[call] += 1
        if request.method == "POST":
            self.bodies.append((call, json.loads(request.content)))

    @property
    def searches(self) -> list[dict[str, Any]]:
        """Bodies of the searches since the last take."""
        return [body for call, body in self.bodies if call.endswith("/search")]

    def take(self) -> Counter[str]:
        """The calls since the last take."""
        taken, self.seen = self.seen, Counter()
        self.bodies = []
        return taken


@dataclass
class Portal:
    """A seeded sandbox, the clock it shares with the connector, and the connector's calls."""

    sandbox: HubSpotSandbox
    clock: FakeClock
    calls: Calls
    connector: HubSpotConnector


Build = Callable[..., Portal]


@pytest.fixture
async def portal(hubspot: SimpleNamespace) -> AsyncIterator[Build]:
    """Build portals of ``people`` contacts and ``deals`` deals, connector ``settings`` on top of fast search."""
    made: list[HubSpotConnector] = []

    def build(people: int = 12, deals: int = 0, **settings: Any) -> Portal:
        clock = FakeClock(START)
        sandbox = create_sandbox(seed=41, people=people, deals=deals, clock=clock)
        calls = Calls()
        overrides = {**hubspot.fast_search(sandbox), "page_size": None, **settings}
        connector = hubspot.connect(sandbox, clock=clock, on_response=calls, **overrides)
        made.append(connector)
        return Portal(sandbox, clock, calls, connector)

    yield build
    for connector in made:
        await connector.aclose()


async def read_all(connector: HubSpotConnector, obj: str, since: Cursor | None = None) -> list[NativeRecord]:
    return [r async for page in connector.read_changes(obj, since) for r in page.records]


def lookback(records: list[NativeRecord]) -> Cursor:
    """What the engine passes after reading ``records``: their last position less the lookback, and no id."""
    return Cursor(records[-1].modified_at - LOOKBACK, "")


async def test_search_page_size_200(portal: Build, hubspot: SimpleNamespace) -> None:
    p = portal(people=450)
    limits = p.connector.limits("contacts")
    records = await read_all(p.connector, "contacts")

    assert (limits.page_size, limits.max_read_batch, limits.max_write_batch) == (200, 100, 100)
    assert len(records) == 450
    assert [body["limit"] for body in p.calls.searches] == [200, 200, 200]
    assert p.calls.take()[SEARCH["contacts"]] == 3
    assert HubSpotSettings(access_token="pat", page_size=500).page_size == 500
    clamped = hubspot.connect(p.sandbox, page_size=500)
    await clamped.aclose()
    assert clamped.limits("contacts").page_size == 200, "search refuses more than 200"
    async with hubspot.client(p.sandbox) as http:
        body = {"filterGroups": [], "sorts": ["hs_object_id"], "properties": ["email"]}
        largest = await http.post("/crm/v3/objects/contacts/search", json={**body, "limit": 200})
        too_large = await http.post("/crm/v3/objects/contacts/search", json={**body, "limit": 201})
    assert largest.status_code == 200
    assert len(largest.json()["results"]) == 200
    assert too_large.status_code == 400
    assert too_large.json()["category"] == "VALIDATION_ERROR"


async def test_lookback_cursor_is_one_inclusive_search(portal: Build) -> None:
    p = portal(people=10)
    records = await read_all(p.connector, "contacts")
    newest = records[-1]
    p.calls.take()
    exact = await read_all(p.connector, "contacts", Cursor(newest.modified_at, ""))
    searches = list(p.calls.searches)
    after_id = await read_all(p.connector, "contacts", newest.position)

    assert [r.id for r in exact] == [newest.id], "no id: every record at the cursor's instant is wanted"
    assert [f["operator"] for s in searches for g in s["filterGroups"] for f in g["filters"]] == ["GTE"]
    assert after_id == []


async def test_touchpoints_ride_along_on_change_stream(portal: Build, hubspot: SimpleNamespace) -> None:
    p = portal(people=45, page_size=10)
    answered: list[Any] = []
    async for page in p.connector.read_changes("contacts", None):
        answered.extend(await p.connector.touchpoints("contacts", [r.id for r in page.records], None))
    searched = [set(body["properties"]) for body in p.calls.searches]
    calls = p.calls.take()
    fresh = hubspot.connect(p.sandbox)
    try:
        expected = await fresh.touchpoints("contacts", [row.id for row in p.sandbox.table("contacts").live()], None)
    finally:
        await fresh.aclose()

    assert calls[BATCH_READ] == 0, "touchpoints of the page just read cost no call"
    assert all(set(TOUCH_PROPERTIES) <= properties for properties in searched)
    assert {"original_source", "form_fill"} <= {t.kind for t in answered}
    assert sorted(answered, key=repr) == sorted(expected, key=repr)


async def test_touchpoints_of_contacts_not_in_the_stream_are_read(portal: Build) -> None:
    p = portal(people=80, page_size=10)
    records = await read_all(p.connector, "contacts")
    p.calls.take()
    oldest, newest = [r.id for r in records[:3]], [r.id for r in records[-3:]]
    touches = await p.connector.touchpoints("contacts", [*oldest, *newest, "999999999"], None)
    (read,) = [body for call, body in p.calls.bodies if call == BATCH_READ]

    assert len(records) > TOUCH_CACHE_PAGES * 10, "more pages than the connector keeps"
    assert p.calls.take() == {BATCH_READ: 1, SUBMISSIONS: 1}
    assert [i["id"] for i in read["inputs"]] == [*oldest, "999999999"], "what it no longer holds, or never read"
    assert {t.native_id for t in touches if t.kind == "original_source"} == {*oldest, *newest}


async def test_archived_list_read_at_most_every_archived_check_seconds(portal: Build) -> None:
    p = portal(people=10, deals=2, archived_check_seconds=600)
    since: dict[str, Cursor] = {}

    async def cycle() -> Counter[str]:
        for obj in ("contacts", "deals"):
            records = await read_all(p.connector, obj, since.get(obj))
            since[obj] = lookback(records) if records else since[obj]
        return p.calls.take()

    first = await cycle()
    p.clock.advance(599)
    early = await cycle()
    p.clock.advance(1)
    due = await cycle()

    assert (first[ARCHIVED["contacts"]], first[ARCHIVED["deals"]]) == (1, 1)
    assert early[ARCHIVED["contacts"]] + early[ARCHIVED["deals"]] == 0
    assert (due[ARCHIVED["contacts"]], due[ARCHIVED["deals"]]) == (1, 1)


async def test_archived_check_zero_reads_the_archived_list_every_stream(portal: Build) -> None:
    p = portal(people=5, archived_check_seconds=0)
    await read_all(p.connector, "contacts")
    await read_all(p.connector, "contacts", Cursor(START, ""))

    assert p.calls.take()[ARCHIVED["contacts"]] == 2
    assert HubSpotSettings(access_token="pat").archived_check_seconds == 900
    with pytest.raises(ValueError, match="archived_check_seconds"):
        HubSpotSettings(access_token="pat", archived_check_seconds=-1)


async def test_deletion_between_sweeps_is_not_missed(portal: Build) -> None:
    p = portal(people=10)
    table = p.sandbox.table("contacts")
    rows = list(table.live())
    table.delete(rows[0].id)  # before the second sweep's since: not handed out again by the third
    p.clock.advance(600)
    table.update(rows[4].id, {"firstname": "Seen"})
    p.clock.advance(10)
    cursor = lookback(await read_all(p.connector, "contacts"))  # sweep 1
    p.clock.advance(1000)
    await read_all(p.connector, "contacts", cursor)  # sweep 2, in a stream from ``cursor``
    p.clock.advance(10)
    table.delete(rows[1].id)
    p.clock.advance(10)
    table.update(rows[2].id, {"firstname": "Later"})
    between = await read_all(p.connector, "contacts", cursor)  # no sweep due: the edits only
    cursor = between[-1].position  # the engine's cursor moves past the deletion
    p.clock.advance(900)
    swept = await read_all(p.connector, "contacts", cursor)  # sweep 3

    assert [(r.id, r.deleted) for r in between] == [(rows[4].id, False), (rows[2].id, False)]
    deleted = table.get(rows[1].id, include_deleted=True)
    assert deleted is not None
    assert deleted.modified_at < cursor.modified_at
    assert [(r.id, r.deleted) for r in swept] == [(rows[1].id, True)], "the deletion behind the cursor arrives"


async def test_first_sweep_after_start_reads_whole_archive(portal: Build) -> None:
    p = portal(people=10)
    table = p.sandbox.table("contacts")
    rows = list(table.live())
    table.delete(rows[0].id)
    table.merge(rows[1].id, rows[2].id)
    p.clock.advance(3600)
    table.update(rows[3].id, {"firstname": "Later"})
    cursor = Cursor(p.clock.now - LOOKBACK, "")  # a restarted process: its stored cursor is past both
    swept = await read_all(p.connector, "contacts", cursor)
    p.clock.advance(900)
    next_sweep = await read_all(p.connector, "contacts", cursor)

    gone = {r.id: r.merged_into for r in swept if r.deleted}
    assert gone == {rows[0].id: None, rows[1].id: rows[2].id}
    assert [r.id for r in swept if not r.deleted] == [rows[3].id]
    assert [r.id for r in next_sweep] == [rows[3].id], "the next sweep starts from the first one's since"


async def test_sweep_given_up_midway_runs_again(portal: Build) -> None:
    p = portal(people=30, page_size=10)
    table = p.sandbox.table("contacts")
    victim = next(iter(table.live()))
    table.delete(victim.id)
    stream = cast(AsyncGenerator[Page, None], p.connector.read_changes("contacts", None))
    async for _page in stream:
        break  # the engine gave up after one page (a crash, an outage)
    await stream.aclose()
    p.clock.advance(60)
    again = await read_all(p.connector, "contacts", Cursor(START, ""))

    assert [(r.id, r.deleted) for r in again] == [(victim.id, True)]


async def test_quiet_cycle_one_search_per_object(portal: Build) -> None:
    p = portal(people=30, deals=6)
    contacts, deals = await read_all(p.connector, "contacts"), await read_all(p.connector, "deals")
    p.calls.take()
    p.clock.advance(300)  # the next scheduled cycle
    again = {obj: await read_all(p.connector, obj, lookback(found)) for obj, found in
             (("contacts", contacts), ("deals", deals))}  # fmt: skip
    touches = await p.connector.touchpoints("contacts", [r.id for r in again["contacts"]], None)

    # the engine asks for no touchpoints of versions it applied already; asked anyway, only the re-read
    # contact's form submissions take a call
    assert p.calls.take() == {SEARCH["contacts"]: 1, SEARCH["deals"]: 1, SUBMISSIONS: 1}
    assert again["contacts"], "the lookback window re-reads the newest contact"
    assert touches, "and its touch properties need no read"


def crowd(p: Portal, instants: int, each: int, *, after_ms: int = 0) -> list[str]:
    """``instants`` timestamps a millisecond apart after every seeded record, ``each`` new contacts at each."""
    table = p.sandbox.table("contacts")
    ids = []
    for n in range(after_ms, after_ms + instants):
        at = START + timedelta(minutes=5, milliseconds=n)
        ids += [table.insert({"email": f"crowd{n}-{i}@x.com"}, at=at).id for i in range(each)]
    return ids


async def test_page_boundary_inside_an_instant_reads_no_record_twice(portal: Build) -> None:
    p = portal(people=0)
    made = crowd(p, instants=10, each=40)  # 400 records: every page of 200 ends inside an instant
    p.calls.take()
    records = await read_all(p.connector, "contacts", Cursor(START, ""))
    searches = p.calls.searches

    assert [r.id for r in records] == sorted(made, key=lambda i: (records_at(records, i), int(i)))
    assert len(records) == len({r.id for r in records}) == 400
    assert len(searches) == 2, "400 records in pages of 200, none read twice"
    (held,) = [f for f in searches[1]["filterGroups"][0]["filters"] if f["operator"] == "NOT_IN"]
    assert len(held["values"]) == 40, "the last instant of page one is left out of page two"


async def test_crowded_instant_at_a_page_boundary_comes_in_full_and_once(portal: Build) -> None:
    p = portal(people=0)
    made = crowd(p, instants=1, each=10) + crowd(p, instants=1, each=400, after_ms=1) + crowd(p, 1, 50, after_ms=2)
    records = await read_all(p.connector, "contacts", Cursor(START, ""))
    left_out = [
        len(f["values"])
        for s in p.calls.searches
        for g in s["filterGroups"]
        for f in g["filters"]
        if f["operator"] == "NOT_IN"
    ]

    assert sorted(r.id for r in records) == sorted(made)
    assert len(records) == 460, "each record once, though page one ends 190 records into a 400-record instant"
    assert [r.position for r in records] == sorted(r.position for r in records)
    assert left_out == [100], "at most 100 ids left out; the rest of the crowded instant is read again"


def records_at(records: list[NativeRecord], native_id: str) -> datetime:
    return next(r.modified_at for r in records if r.id == native_id)
