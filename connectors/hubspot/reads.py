"""Reading HubSpot: the change stream through search (keyset paging), archived records and merges, lookups.

Search serves at most 10,000 results of one query and sorts by one property only. The stream therefore never
pages with offsets: each query asks for records modified at or after an anchor time, oldest first, and the anchor
moves to the last time seen. A page filled by one instant (a mass update) is paged by ``hs_object_id`` instead,
so even more than 10,000 records sharing one timestamp come out in full and in (modified_at, id) order. The
records of a page's last instant are held back, and the next search leaves them out by id (``NOT_IN``, up to 100
of them), so a page boundary inside an instant costs no records read twice (past 100, only the rest are).

Archived records (deletions and merges) cannot be searched: the archived list is read in full, at most every
``archived_check_seconds`` per object (:class:`ArchiveSchedule`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from closeloop.connector import FieldTimes
from closeloop.http.paging import KeysetPaginator, Params, TokenPaginator, dig, paginate
from closeloop.model import Cursor, NativeRecord, Page, parse_utc, record_key

from .api import JSON, MAX_BATCH, MODIFIED, NEXT_AFTER, HubSpotApi, millis, to_record


@dataclass(frozen=True)
class Bound:
    """The lower end of a search window: records modified after ``at`` (or at it, when inclusive)."""

    at: datetime
    inclusive: bool

    def filter(self, obj: str) -> JSON:
        """The search filter for this bound."""
        return {"propertyName": MODIFIED[obj], "operator": "GTE" if self.inclusive else "GT", "value": millis(self.at)}


@dataclass(frozen=True)
class Sweep:
    """One read of an object's archived list, within the change stream that asked from ``since``."""

    started: datetime
    since: Cursor | None
    floor: Cursor | None
    """Archived records at or before this were handed out by an earlier sweep; None keeps them all."""


class ArchiveSchedule:
    """When each object's archived list is read again, and which of its records are still news then.

    Between two sweeps the engine's cursor moves on, so a deletion made in between may lie before the ``since``
    of the stream that finds it: a sweep keeps everything archived after the ``since`` of the previous sweep
    (or its own, if earlier). The first sweep in a process keeps everything; the engine skips what it applied.
    """

    def __init__(self, every: timedelta, clock: Callable[[], datetime]) -> None:
        self.every = every
        self.clock = clock
        self._last: dict[str, Sweep] = {}

    def due(self, obj: str, since: Cursor | None) -> Sweep | None:
        """The sweep to run in a stream from ``since``, or None when the last one is too recent."""
        now = self.clock()
        last = self._last.get(obj)
        if last is None:
            return Sweep(now, since, None)
        if now - last.started < self.every:
            return None
        floor = None if last.since is None or since is None else min(last.since, since)
        return Sweep(now, since, floor)

    def finished(self, obj: str, sweep: Sweep) -> None:
        """Record a sweep whose records were all handed out (a stream given up midway sweeps again)."""
        self._last[obj] = sweep


class ChangeReader:
    """The change stream of one object: live records by search, archived ones and merges interleaved."""

    def __init__(self, api: HubSpotApi, obj: str, properties: Sequence[str], page_size: int) -> None:
        self.api = api
        self.obj = obj
        self.properties = list(properties)
        self.page_size = page_size

    async def pages(self, since: Cursor | None, sweep: Sweep | None) -> AsyncIterator[Page]:
        """Pages after ``since`` in (modified_at, id) order, with the archived records of ``sweep`` (if any).

        A sweep's records after its floor come too, even those before ``since``: they are deletions and
        merges the stream has not handed out yet.
        """
        pending = deque(await self.archived_after(sweep.floor) if sweep is not None else [])
        async for records in self.live(since):
            last = record_key(records[-1])
            merged = list(records)
            while pending and record_key(pending[0]) <= last:
                merged.append(pending.popleft())
            yield Page(tuple(sorted(merged, key=record_key)))
        while pending:
            chunk = [pending.popleft() for _ in range(min(self.page_size, len(pending)))]
            yield Page(tuple(chunk))

    async def live(self, since: Cursor | None) -> AsyncIterator[list[NativeRecord]]:
        """Live records after ``since``, as sorted lists, one search page at a time."""
        bound: Bound | None = None
        if since is not None:
            start = since.modified_at.replace(microsecond=since.modified_at.microsecond // 1000 * 1000)
            # HubSpot keeps milliseconds: only a cursor on a whole millisecond can share its stamp with records.
            # With no id (a cursor looking back) all of them are wanted: one inclusive search does.
            at_start = start == since.modified_at
            if at_start and since.id:
                async for records in self.instant(start, since.id):
                    yield records
            bound = Bound(start, inclusive=at_start and not since.id)
        start_at = Position(bound)

        async def fetch(position: Position) -> tuple[Position, JSON]:
            body = await self.api.search(
                self.obj, position.filters(self.obj), sort=MODIFIED[self.obj], properties=self.properties,
                limit=self.page_size,
            )  # fmt: skip
            return position, body

        async for position, body in paginate(fetch, LiveSearch(self.obj, start_at)):
            records = position.merge(self.obj, body)
            if not _has_next(body):
                if records:
                    yield sorted(records, key=record_key)
                return
            older, newest, _ = cut(records)
            if older:
                # The newest instant may go on past this page. Its records are held back, and the next search
                # starts at that instant without them (without the first 100, in a crowded instant).
                yield sorted(older, key=record_key)
            else:
                # One instant fills the page (a mass update): walk it by id; the next search goes past it.
                async for chunk in self.instant(newest, ""):
                    yield chunk

    async def instant(self, at: datetime, after_id: str) -> AsyncIterator[list[NativeRecord]]:
        """Records modified exactly at ``at`` with an id above ``after_id``, paged by ``hs_object_id``."""

        async def fetch(after: str) -> JSON:
            filters: list[JSON] = [{"propertyName": MODIFIED[self.obj], "operator": "EQ", "value": millis(at)}]
            if after:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": after})
            return await self.api.search(
                self.obj, filters, sort="hs_object_id", properties=self.properties, limit=self.page_size
            )

        async for body in paginate(fetch, KeysetPaginator(after_id, _last_id)):
            records = sorted((to_record(self.obj, item) for item in body.get("results", [])), key=record_key)
            if records:
                yield records

    async def archived_after(self, floor: Cursor | None) -> list[NativeRecord]:
        """Archived records whose ``archivedAt`` lies after ``floor``, with ``merged_into`` for merge losers.

        HubSpot cannot search archived records, so the archived list is read in full.
        """
        found: list[NativeRecord] = []
        params = {"archived": "true", "limit": MAX_BATCH, "properties": MODIFIED[self.obj]}
        path = f"/crm/v3/objects/{self.obj}"
        async for body in paginate(partial(self.api.get, path), TokenPaginator(params, NEXT_AFTER, "after")):
            for item in body.get("results", []):
                record = to_record(self.obj, item, deleted=True)
                if floor is None or floor.precedes(record):
                    found.append(record)
        if not found:
            return []
        winners = await self.merge_winners(floor)
        return sorted(
            (NativeRecord(r.id, r.modified_at, r.fields, deleted=True, merged_into=winners.get(r.id)) for r in found),
            key=record_key,
        )

    async def merge_winners(self, floor: Cursor | None) -> dict[str, str]:
        """Loser id -> winner id, from ``hs_merged_object_ids`` of records modified since ``floor``.

        A merge stamps the winner, so every winner of a merge after ``floor`` is modified after it too. Pages
        go by id, never by offset: with no floor (the first sweep) the winners may pass search's 10,000 cap.
        """
        filters: list[JSON] = [{"propertyName": "hs_merged_object_ids", "operator": "HAS_PROPERTY"}]
        if floor is not None:
            start = floor.modified_at - timedelta(microseconds=floor.modified_at.microsecond % 1000)
            filters.append(Bound(start, inclusive=True).filter(self.obj))
        winners: dict[str, str] = {}

        async def fetch(last_id: str) -> JSON:
            above = [{"propertyName": "hs_object_id", "operator": "GT", "value": last_id}] if last_id else []
            return await self.api.search(
                self.obj, [*filters, *above], sort="hs_object_id", properties=["hs_merged_object_ids"],
                limit=self.page_size,
            )  # fmt: skip

        async for body in paginate(fetch, KeysetPaginator("", _last_result_id)):
            for item in body.get("results", []):
                merged = str((item.get("properties") or {}).get("hs_merged_object_ids") or "")
                for loser in filter(None, merged.split(";")):
                    winners[loser.strip()] = str(item["id"])
        return winners


async def read_by_ids(
    api: HubSpotApi, obj: str, ids: Sequence[str], properties: Sequence[str], *, id_property: str | None = None
) -> list[NativeRecord]:
    """The live records with these ids (or unique ``id_property`` values), 100 per batch read; missing skipped."""
    found: list[NativeRecord] = []
    unique = list(dict.fromkeys(i for i in ids if i))
    for start in range(0, len(unique), MAX_BATCH):
        body: JSON = {
            "inputs": [{"id": i} for i in unique[start : start + MAX_BATCH]],
            "properties": list(properties),
            "propertiesWithHistory": [],
        }
        if id_property:
            body["idProperty"] = id_property
        answer = await api.post(f"/crm/v3/objects/{obj}/batch/read", body, idempotent=True)
        found.extend(to_record(obj, item) for item in answer.get("results", []))
    return found


HISTORY_BATCH = 50
"""Records per batch read that asks property histories (HubSpot's limit with ``propertiesWithHistory``)."""


async def field_times(api: HubSpotApi, obj: str, ids: Sequence[str], fields: Sequence[str]) -> FieldTimes:
    """When each of ``fields`` of these records last changed: the newest entry of its property history."""
    found: FieldTimes = {}
    unique = list(dict.fromkeys(i for i in ids if i))
    for start in range(0, len(unique), HISTORY_BATCH):
        body: JSON = {
            "inputs": [{"id": i} for i in unique[start : start + HISTORY_BATCH]],
            "properties": [],
            "propertiesWithHistory": list(fields),
        }
        answer = await api.post(f"/crm/v3/objects/{obj}/batch/read", body, idempotent=True)
        for item in answer.get("results", []):
            history = item.get("propertiesWithHistory") or {}
            found[str(item["id"])] = {
                name: max(parse_utc(str(entry["timestamp"])) for entry in entries)
                for name, entries in history.items()
                if entries
            }
    return found


async def search_in(
    api: HubSpotApi, obj: str, key: str, values: Sequence[str], properties: Sequence[str], page_size: int
) -> list[NativeRecord]:
    """Records whose ``key`` is one of ``values`` (an IN filter, 100 values per search)."""
    found: dict[str, NativeRecord] = {}
    wanted = list(dict.fromkeys(v.lower() for v in values if v))  # HubSpot's IN wants lower-case strings
    for start in range(0, len(wanted), MAX_BATCH):
        condition = {"propertyName": key, "operator": "IN", "values": wanted[start : start + MAX_BATCH]}

        async def fetch(params: Params, condition: JSON = condition) -> JSON:
            return await api.search(
                obj, [condition], sort="hs_object_id", properties=properties, limit=page_size, after=params.get("after")
            )

        async for body in paginate(fetch, TokenPaginator({}, NEXT_AFTER, "after")):
            for item in body.get("results", []):
                found[str(item["id"])] = to_record(obj, item)
    return list(found.values())


def _has_next(body: JSON) -> bool:
    return bool(dig(body, NEXT_AFTER))


def _last_id(body: JSON) -> str | None:
    """The highest record id of a page paged by id, None when it was the last page."""
    ids = [str(item["id"]) for item in body.get("results", [])]
    return max(ids, key=lambda i: (len(i), i)) if ids and _has_next(body) else None


def _last_result_id(body: JSON) -> str | None:
    """The last result's id of a page sorted by ``hs_object_id``, None when it was the last page."""
    results = body.get("results", [])
    return str(results[-1]["id"]) if results and _has_next(body) else None


def cut(records: Sequence[NativeRecord]) -> tuple[list[NativeRecord], datetime, list[NativeRecord]]:
    """A page split at its newest instant: the records before it, that instant, and the instant's records."""
    newest = max(r.modified_at for r in records)
    return [r for r in records if r.modified_at < newest], newest, [r for r in records if r.modified_at == newest]


@dataclass(frozen=True)
class Position:
    """Where the live search stands: its lower bound, and the records of the bound's instant already read."""

    bound: Bound | None
    held: tuple[NativeRecord, ...] = ()

    def filters(self, obj: str) -> list[JSON]:
        """The search's filters: after the bound, leaving out (the first 100 of) the held records."""
        filters = [self.bound.filter(obj)] if self.bound else []
        if self.held:
            left_out = [r.id for r in self.held[:MAX_BATCH]]
            filters.append({"propertyName": "hs_object_id", "operator": "NOT_IN", "values": left_out})
        return filters

    def merge(self, obj: str, body: JSON) -> list[NativeRecord]:
        """The held records and the page's, those held that came again once (past 100 held, they may)."""
        have = {(r.id, r.modified_at) for r in self.held}
        found = (to_record(obj, item) for item in body.get("results", []))
        return [*self.held, *(r for r in found if (r.id, r.modified_at) not in have)]


@dataclass(frozen=True)
class LiveSearch:
    """HubSpot's live change search, paged by keyset: each search starts at the newest instant of the last page.

    The records of that instant are held back and left out by id; a page that one instant fills is walked by id
    (:meth:`ChangeReader.instant`) and the next search starts past that instant.
    """

    obj: str
    start: Position

    def first(self) -> Position:
        """The search from the stream's start."""
        return self.start

    def next(self, state: Position, body: tuple[Position, JSON]) -> Position | None:
        """The search after a page, None when the page was the last."""
        position, answer = body
        if not _has_next(answer):
            return None
        older, newest, held = cut(position.merge(self.obj, answer))
        if older:
            return Position(Bound(newest, inclusive=True), tuple(held))
        return Position(Bound(newest, inclusive=False))


@dataclass(frozen=True)
class LinkQueue:
    """How v4's association batch read pages: each answer may name, per record, the ``after`` of its next links;
    those go back into the queue, read 100 inputs per call, until none is left."""

    ids: Sequence[str]

    def first(self) -> list[JSON]:
        """Every record once, without ``after``."""
        return [{"id": i} for i in dict.fromkeys(self.ids)]

    def next(self, state: list[JSON], body: JSON) -> list[JSON] | None:
        """The inputs left after this call's, with the records whose links go on; None when none are left."""
        more = [
            {"id": str(result["from"]["id"]), "after": after}
            for result in body.get("results", [])
            if (after := dig(result, NEXT_AFTER))
        ]
        return [*state[MAX_BATCH:], *more] or None


async def association_pages(api: HubSpotApi, from_obj: str, to_obj: str, ids: Sequence[str]) -> AsyncIterator[JSON]:
    """The answers of v4's association batch read for these records, every link page included."""
    if not ids:
        return
    path = f"/crm/v4/associations/{from_obj}/{to_obj}/batch/read"

    async def fetch(inputs: list[JSON]) -> JSON:
        return await api.post(path, {"inputs": inputs[:MAX_BATCH]}, idempotent=True)

    async for body in paginate(fetch, LinkQueue(ids)):
        yield body
