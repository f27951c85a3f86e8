"""Marketo's change stream: leads have no "modified since" filter, so changes come from the activity log.

Incremental read (a cursor is known): a paging token at the cursor's second, then three activity streams in
activityDate order, merged: Get Lead Changes (New Lead 12, Change Data Value 13), Get Deleted Leads (37) and
Merge Leads (32). They are cut into *windows* of about ``page_size`` leads that never split one activity second.
A Change Data Value activity names the fields it changed: their activity dates are the leads' per-field change
times (``NativeRecord.field_times``), at no extra call. The window's changed leads are read by id
(filterType=id, 300 per call); a lead whose ``updatedAt`` is later than the window's last activity changed again
after it, so it is carried to the next window instead of being yielded out of order. Each window's records are
sorted by (updatedAt, id) and kept only when strictly after both the cursor and the last record yielded, so the
stream is ordered, never repeats and never loops.

Full read (no cursor): Marketo cannot list leads in updatedAt order, so an index pass scans ids (300 per call,
``id`` and ``updatedAt`` only) until ``scan_gap_batches`` empty batches in a row, sorts the (updatedAt, id)
keys, and reads the full records page by page in that order; then the incremental read continues from the
last record for what changed meanwhile. The id scan needs no admin setup (a static "all people" list would)
and no asynchronous bulk-export jobs; its price is one extra light call per 300 ids.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from closeloop.http.paging import TokenPaginator, paginate
from closeloop.model import Cursor, NativeRecord, Page, iso_utc, parse_utc, position_key, record_key, records_after

from .api import MAX_BATCH, MORE_RESULT, NEXT_TOKEN, MarketoApi

NEW_LEAD, CHANGE_DATA_VALUE, MERGE_LEADS, DELETE_LEAD = 12, 13, 32, 37
ActivityKey = tuple[datetime, int]


def lead_record(lead: dict[str, Any]) -> NativeRecord:
    """A lead as a native record; ``updatedAt`` is its change time."""
    return NativeRecord(id=str(lead["id"]), modified_at=parse_utc(lead["updatedAt"]), fields=lead)


def activity_key(activity: dict[str, Any]) -> ActivityKey:
    """Log order: activityDate, then the activity id."""
    return parse_utc(activity["activityDate"]), int(activity.get("id") or 0)


def merged_ids(activity: dict[str, Any]) -> list[str]:
    """The losing lead ids a Merge Leads activity names in its ``Merge ids`` attribute."""
    for attribute in activity.get("attributes") or []:
        if attribute.get("name") == "Merge ids":
            return re.findall(r"\d+", str(attribute.get("value")))
    return []


@dataclass
class Window:
    """The activities of one window: leads to re-read and leads gone (deleted or merged away)."""

    changed: dict[str, None] = field(default_factory=dict)
    gone: dict[str, NativeRecord] = field(default_factory=dict)
    last: datetime | None = None
    field_times: dict[str, dict[str, datetime]] = field(default_factory=dict)
    """Lead id -> field -> when a Change Data Value activity last changed it (per-field change times)."""

    def __len__(self) -> int:
        return len(self.changed) + len(self.gone)

    def absorb(self, activity: dict[str, Any]) -> None:
        """Add one activity to the window."""
        lead_id, moment = str(activity["leadId"]), parse_utc(activity["activityDate"])
        self.last = moment
        kind = activity.get("activityTypeId")
        if kind == DELETE_LEAD:
            self.gone[lead_id] = NativeRecord(lead_id, moment, deleted=True)
            return
        self.changed[lead_id] = None
        if kind == CHANGE_DATA_VALUE:
            times = self.field_times.setdefault(lead_id, {})
            for changed in activity.get("fields") or []:
                name = str(changed.get("name") or "")
                if name and (name not in times or moment > times[name]):
                    times[name] = moment
        if kind == MERGE_LEADS:
            for loser in merged_ids(activity):
                self.gone[loser] = NativeRecord(loser, moment, deleted=True, merged_into=lead_id)


class ActivityStream:
    """One activity endpoint walked with a paging token, 300 per call, one activity at a time."""

    def __init__(self, api: MarketoApi, path: str, params: dict[str, Any], token: str) -> None:
        pages = TokenPaginator(
            {**params, "nextPageToken": token, "batchSize": MAX_BATCH}, NEXT_TOKEN, "nextPageToken", more_at=MORE_RESULT
        )
        # An empty page has no "result" at all; moreResult may still be true.
        self._activities = (
            a async for body in paginate(partial(api.get, path), pages) for a in body.get("result") or []
        )
        self._head: dict[str, Any] | None = None
        self._ended = False

    async def peek(self) -> dict[str, Any] | None:
        """The next activity without taking it (a page is read only when the one before is taken)."""
        if self._head is None and not self._ended:
            self._head = await anext(self._activities, None)
            self._ended = self._head is None
        return self._head

    def take(self) -> dict[str, Any]:
        """Take the activity :meth:`peek` returned."""
        head, self._head = self._head, None
        if head is None:
            raise RuntimeError("ActivityStream.take() without an activity from peek()")
        return head


async def merged(streams: Sequence[ActivityStream]) -> AsyncIterator[dict[str, Any]]:
    """The activities of several streams, each in log order, merged in log order."""
    while live := [(activity_key(a), s) for s in streams if (a := await s.peek()) is not None]:
        _, stream = min(live, key=lambda pair: pair[0])
        yield stream.take()


class ChangeReader:
    """Reads the lead change stream of one Marketo instance."""

    def __init__(self, api: MarketoApi, fields: Sequence[str], page_size: int) -> None:
        self.api = api
        self.fields = list(fields)
        self.page_size = page_size

    async def read(self, since: Cursor | None) -> AsyncIterator[Page]:
        """Pages strictly after ``since`` in (updatedAt, id) order; a full read when ``since`` is None."""
        if since is None:
            async for page in self.full():
                yield page
        else:
            async for page in self.incremental(since):
                yield page

    async def full(self) -> AsyncIterator[Page]:
        """Every lead in (updatedAt, id) order, then whatever changed while reading."""
        index: list[tuple[datetime, str]] = []
        async for keys in self._scan_ids():
            index.extend(keys)
        index.sort(key=lambda key: position_key(*key))  # ids as numbers, as every page is sorted
        last: Cursor | None = None
        for start in range(0, len(index), self.page_size):
            expected = {lead_id: moment for moment, lead_id in index[start : start + self.page_size]}
            records = await self._read_ids(list(expected))
            # A lead changed since the index pass sits later in the stream: the incremental tail yields it.
            page = sorted((r for r in records if r.modified_at == expected[r.id]), key=record_key)
            if page:
                last = page[-1].position
                yield Page(tuple(page))
        if last is not None:
            async for tail in self.incremental(last):
                yield tail

    async def _scan_ids(self) -> AsyncIterator[list[tuple[datetime, str]]]:
        settings = self.api.settings
        next_id, empty = settings.scan_start_id, 0
        while empty < settings.scan_gap_batches:
            ids = [str(i) for i in range(next_id, next_id + MAX_BATCH)]
            next_id += MAX_BATCH
            found: list[tuple[datetime, str]] = []
            async for leads in self.api.leads("id", ids, ("id", "updatedAt")):
                found.extend((parse_utc(lead["updatedAt"]), str(lead["id"])) for lead in leads)
            empty = 0 if found else empty + 1
            yield found

    async def incremental(self, since: Cursor) -> AsyncIterator[Page]:
        """Changes after ``since`` from the activity log, window by window."""
        token_body = await self.api.get(
            "/rest/v1/activities/pagingtoken.json", {"sinceDatetime": iso_utc(since.modified_at, millis=False)}
        )
        token = str(token_body["nextPageToken"])
        watched = {"fields": ",".join(self._watched())}
        streams = [
            ActivityStream(self.api, "/rest/v1/activities/leadchanges.json", watched, token),
            ActivityStream(self.api, "/rest/v1/activities/deletedleads.json", {}, token),
            ActivityStream(self.api, "/rest/v1/activities.json", {"activityTypeIds": str(MERGE_LEADS)}, token),
        ]  # fmt: skip
        carried: dict[str, None] = {}
        last = since
        async for window, exhausted in self._windows(streams):
            end = None if exhausted else window.last
            records, carried = await self._settle(window, carried, end)
            fresh = records_after(last, records)
            for start in range(0, len(fresh), self.page_size):
                yield Page(tuple(fresh[start : start + self.page_size]))
            if fresh:
                last = fresh[-1].position

    def _watched(self) -> list[str]:
        watched = self.api.settings.watched_fields
        return [f for f in watched if f in self.fields] or list(watched)

    async def _windows(self, streams: list[ActivityStream]) -> AsyncIterator[tuple[Window, bool]]:
        """Windows of activities in log order, each closed once full and the next activity has a later second;
        the last one comes with True (the log is exhausted)."""
        window = Window()
        async for activity in merged(streams):
            if len(window) >= self.page_size and window.last is not None and activity_key(activity)[0] > window.last:
                yield window, False
                window = Window()
            window.absorb(activity)
        yield window, True

    async def _settle(
        self, window: Window, carried: dict[str, None], end: datetime | None
    ) -> tuple[list[NativeRecord], dict[str, None]]:
        """The window's records in order, and the leads that changed after its end (for the next window)."""
        wanted = [i for i in {**carried, **window.changed} if i not in window.gone]
        ready: list[NativeRecord] = list(window.gone.values())
        later: dict[str, None] = {}
        for record in await self._read_ids(wanted):
            if end is not None and record.modified_at > end:
                later[record.id] = None
            else:
                ready.append(replace(record, field_times=window.field_times.get(record.id, {})))
        ready.sort(key=record_key)
        return ready, later

    async def _read_ids(self, ids: Sequence[str]) -> list[NativeRecord]:
        records: list[NativeRecord] = []
        async for leads in self.api.leads("id", ids, self.fields):
            records.extend(lead_record(lead) for lead in leads)
        return records
