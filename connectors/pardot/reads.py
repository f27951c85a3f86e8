"""Prospect reads: the change stream in (updatedAt, id) order, and lookups by id ranges or by email.

v5 orders by ``updatedAt`` then by numeric id, which is closeloop's cursor order (:func:`closeloop.model.record_key`),
so each v5 page is a page of the stream as it comes, less what lies at or before the last record handed out.
A token sequence stops after 100,000 records (warning 203): the read restarts inclusively at the last
``updatedAt`` seen, or, when one second holds more than that, pages that second by ``idGreaterThan``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from closeloop.http.paging import paginate
from closeloop.model import Cursor, NativeRecord, Page, parse_utc, record_key, records_after, utc

from .api import PardotApi, QueryPage

ORDER = "updatedAt ASC, id ASC"
MAX_GAP = 50
"""Ids this far apart are read in separate range queries (v5 filters by ranges, not by lists)."""


def prospect_record(values: Mapping[str, Any]) -> NativeRecord:
    """A prospect as a native record; recycle-bin prospects come back deleted."""
    return NativeRecord(
        id=str(values["id"]),
        modified_at=parse_utc(str(values["updatedAt"])),
        fields=dict(values),
        deleted=bool(values.get("isDeleted")),
    )


def moment(value: datetime) -> str:
    """A v5 DateTime parameter: whole seconds with a numeric offset (httpx URL-encodes its '+')."""
    return utc(value).replace(microsecond=0).isoformat()


def id_ranges(ids: Sequence[str], max_gap: int = MAX_GAP) -> list[tuple[int, int]]:
    """Numeric ids grouped into (low, high) ranges whose neighbours lie at most ``max_gap`` apart."""
    numbers = sorted({int(i) for i in ids if str(i).isdigit()})
    ranges: list[tuple[int, int]] = []
    for number in numbers:
        if ranges and number - ranges[-1][1] <= max_gap:
            ranges[-1] = (ranges[-1][0], number)
        else:
            ranges.append((number, number))
    return ranges


class ChangeReader:
    """One read of the prospect change stream."""

    def __init__(self, api: PardotApi, fields: Sequence[str], page_size: int) -> None:
        self.api = api
        self.fields = list(fields)
        self.page_size = page_size

    async def read(self, since: Cursor | None) -> AsyncIterator[Page]:
        """Pages of prospects strictly after ``since`` in (updatedAt, id) order, one per v5 page.

        A read starts at the cursor's second inclusively, and a restarted sequence reads its last second again:
        what lies at or before the last record handed out is left out, so each comes once.
        """
        last = since
        async for values in self._rows(since.modified_at if since else None):
            fresh = records_after(last, sorted(map(prospect_record, values), key=record_key))
            if fresh:
                yield Page(tuple(fresh))
                last = fresh[-1].position

    async def _rows(self, start: datetime | None) -> AsyncIterator[list[dict[str, Any]]]:
        """Raw pages from ``start`` (inclusive) on, across token sequences cut at 100,000 records."""

        async def fetch(stretch: Stretch) -> QueryPage:
            if stretch.token is not None:
                return await self.api.page("prospects", self.fields, {"nextPageToken": stretch.token})
            params = self._params(stretch.bound, stretch.after_id, inclusive=stretch.inclusive)
            return await self.api.page("prospects", self.fields, params)

        async for page in paginate(fetch, Sequences(Stretch(start))):
            if page.values:
                yield page.values

    def _params(self, bound: datetime | None, after_id: int | None, *, inclusive: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"deleted": "all", "limit": self.page_size}
        if after_id is not None and bound is not None:
            return {**params, "updatedAt": moment(bound), "idGreaterThan": after_id, "orderBy": "id ASC"}
        params["orderBy"] = ORDER
        if bound is not None:
            params["updatedAtAfterOrEqualTo" if inclusive else "updatedAtAfter"] = moment(bound)
        return params


async def read_ids(api: PardotApi, ids: Sequence[str], fields: Sequence[str]) -> list[NativeRecord]:
    """Live prospects with these ids, by id-range queries (5 at once, as the limiter allows)."""
    wanted = set(ids)
    queries = [{"idGreaterThanOrEqualTo": low, "idLessThanOrEqualTo": high} for low, high in id_ranges(ids)]
    found = await _each(api, fields, queries)
    return [r for r in found if r.id in wanted]


async def read_where(api: PardotApi, key: str, values: Sequence[str], fields: Sequence[str]) -> list[NativeRecord]:
    """Live prospects whose ``key`` (``email`` or ``salesforceId``) equals one of ``values``: a query each."""
    found = await _each(api, fields, [{key: value} for value in dict.fromkeys(values)])
    return list({r.id: r for r in found}.values())


async def _each(api: PardotApi, fields: Sequence[str], queries: Sequence[Mapping[str, Any]]) -> list[NativeRecord]:
    async def one(params: Mapping[str, Any]) -> list[NativeRecord]:
        return [
            prospect_record(v) async for page in api.query("prospects", fields, {**params, "limit": 1000})
            for v in page.values
        ]  # fmt: skip

    parts = await asyncio.gather(*map(one, queries), return_exceptions=True)
    for part in parts:
        if isinstance(part, BaseException):
            raise part  # after every query has ended: none is left running unobserved
    return [record for part in parts if not isinstance(part, BaseException) for record in part]


@dataclass(frozen=True)
class Stretch:
    """Where the prospect stream stands: a token sequence's start (a bound, maybe an id within its second), the
    token of its next page, and the last prospect the sequence gave."""

    bound: datetime | None
    after_id: int | None = None
    inclusive: bool = True
    token: str | None = None
    last: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Sequences:
    """How v5 pages the prospect stream: tokens within a sequence; a cut sequence restarts at its last
    ``updatedAt`` (inclusively), or by ``idGreaterThan`` when one second holds more than a sequence."""

    start: Stretch

    def first(self) -> Stretch:
        """The first sequence, from the stream's start."""
        return self.start

    def next(self, state: Stretch, page: QueryPage) -> Stretch | None:
        """The next page: by token, by a restarted sequence, or None once the stream is read."""
        last = page.values[-1] if page.values else state.last
        if page.token:
            return replace(state, token=page.token, last=last)
        if not page.cut or last is None:
            # The sequence ran out; a second paged by id still has its later records to come.
            return None if state.after_id is None else Stretch(state.bound, None, inclusive=False)
        stamp = parse_utc(str(last["updatedAt"]))
        if stamp == state.bound and (state.after_id is not None or state.inclusive):
            return Stretch(state.bound, int(last["id"]), state.inclusive)  # one second holds more than a sequence
        return Stretch(stamp)
