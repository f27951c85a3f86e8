"""How Salesforce pages a query: ``nextRecordsUrl`` until ``done``, and a change read that outlives its cursor.

A query cursor (the locator in ``nextRecordsUrl``) lives about 15 minutes. A change read is ordered by
(SystemModstamp, Id), so when its locator expired mid-read the read goes on by querying again from the last row
it received instead of failing the whole stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from closeloop.http.paging import dig
from closeloop.model import Cursor

from .schema import to_record

NEXT_URL, DONE = ("nextRecordsUrl",), ("done",)


@dataclass(frozen=True)
class ChangeBatch:
    """One batch of a change read: the URL it is at (None: the query itself), and the last row before it."""

    next_url: str | None
    after: Cursor | None


@dataclass(frozen=True)
class ChangePaginator:
    """A change read's batches from ``start``: the query's first, then ``nextRecordsUrl`` until done."""

    start: Cursor | None

    def first(self) -> ChangeBatch:
        """The query from the read's start."""
        return ChangeBatch(None, self.start)

    def next(self, state: ChangeBatch, body: Any) -> ChangeBatch | None:
        """The batch after ``body``, with its last row as the place to query again from; None once done."""
        rows = dig(body, ("records",)) or []
        url = dig(body, NEXT_URL)
        if dig(body, DONE) is not False or not url or not rows:
            return None
        return ChangeBatch(str(url), to_record(rows[-1]).position)


def expired_locator(body_text: str) -> bool:
    """Whether Salesforce refused a ``nextRecordsUrl`` because its query cursor expired."""
    return "INVALID_QUERY_LOCATOR" in body_text
