"""Reading Zoho changes: COQL keyset queries on (Modified_Time, id), deletions, and their merge in order."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from closeloop.http.paging import dig
from closeloop.model import Cursor, CursorKey, NativeRecord, parse_utc, record_key

from .schema import MODIFIED_TIME

COQL_MAX_LIMIT = 2000
"""Rows per COQL query (LIMIT caps at 2,000)."""
COQL_MAX_COLUMNS = 50
API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_$]*")
SEARCH_MAX_CRITERIA = 10
PAGE_SIZE = 200
"""Records per page of list, search and deleted-records calls."""
MORE_RECORDS = ("info", "more_records")
"""Where a Zoho answer says another page follows."""


def whole_second(moment: datetime) -> datetime:
    """Zoho stores and compares times at second resolution."""
    return moment.astimezone(UTC).replace(microsecond=0)


def coql_time(moment: datetime) -> str:
    """A COQL datetime literal: ISO 8601 with an explicit offset, never a bare local time."""
    return whole_second(moment).isoformat()


def coql_columns(fields: Iterable[str]) -> list[str]:
    """At most 50 selectable columns, Modified_Time always among them (COQL refuses ``*``)."""
    names = [name for name in fields if name not in ("id", MODIFIED_TIME)]
    return [MODIFIED_TIME, *names[: COQL_MAX_COLUMNS - 1]]


def changes_query(module: str, columns: Sequence[str], after: Cursor | None, limit: int) -> str:
    """A COQL page of records after ``after`` in (Modified_Time, id) order.

    COQL compares times to the second, so a cursor with sub-second precision is floored and the caller drops
    what lies at or before it. A whole-second cursor with an id becomes a keyset condition, so no offset is
    ever needed and the 100,000-row offset ceiling never applies, even when many records share one second.
    """
    for name in (module, *columns):
        if not API_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a Zoho API name")
    select = ", ".join(columns)
    if after is None:
        where = "id is not null"
    else:
        stamp = whole_second(after.modified_at)
        where = f"Modified_Time >= '{coql_time(stamp)}'"
        if after.id and stamp == after.modified_at and after.id.isdigit():
            where += f" and (Modified_Time > '{coql_time(stamp)}' or id > {after.id})"
    # Names are API names checked above; the only literals are formatted times and digit-only ids.
    return (
        f"select {select} from {module} where {where} "  # noqa: S608  # COQL, not SQL; see above
        f"order by Modified_Time asc, id asc limit 0, {min(limit, COQL_MAX_LIMIT)}"
    )


position_key = record_key
"""(time, id) order with Zoho's numeric ids compared as numbers: closeloop's one definition of stream order."""


def cursor_key(cursor: Cursor) -> CursorKey:
    """The key of a cursor, comparable with :func:`position_key`."""
    return cursor.key


def to_record(payload: Mapping[str, Any]) -> NativeRecord:
    """A Zoho record; its Modified_Time (in the org's zone, with offset) becomes aware UTC."""
    fields = {k: v for k, v in payload.items() if k != "id"}
    return NativeRecord(id=str(payload["id"]), modified_at=parse_utc(str(payload[MODIFIED_TIME])), fields=fields)


def to_deletion(payload: Mapping[str, Any]) -> NativeRecord:
    """An entry of ``/{module}/deleted``; Zoho does not say whether a merge caused it, nor into which record.

    A merged-away record is deleted permanently (``type`` permanent, never in the recycle bin), but so is one
    emptied from the recycle bin: the type tells no merge. The engine tells it (``closeloop.engine.survivors``).
    """
    fields = {"display_name": payload.get("display_name"), "type": payload.get("type")}
    return NativeRecord(
        id=str(payload["id"]), modified_at=parse_utc(str(payload["deleted_time"])), fields=fields, deleted=True
    )


def deleted_since(since: Cursor | None) -> dict[str, str]:
    """The If-Modified-Since header that bounds a deleted-records read."""
    if since is None:
        return {}
    return {"If-Modified-Since": coql_time(since.modified_at)}


def interleave(
    records: Sequence[NativeRecord], deletions: list[NativeRecord], *, last_page: bool
) -> tuple[NativeRecord, ...]:
    """Merge the deletions due before the page's end into the page; consumed deletions leave the list."""
    if last_page or not records:
        due, deletions[:] = list(deletions), []
    else:
        end = position_key(records[-1])
        due = [d for d in deletions if position_key(d) <= end]
        deletions[:] = [d for d in deletions if position_key(d) > end]
    return tuple(sorted([*records, *due], key=position_key))


def criteria_value(value: str) -> str:
    """Escape what Zoho's criteria syntax reserves inside a value: backslash, parentheses, comma."""
    for char in ("\\", "(", ")", ","):
        value = value.replace(char, "\\" + char)
    return value


def equals_criteria(key: str, values: Sequence[str]) -> str:
    """``(key:equals:a)or(key:equals:b)...`` (at most 10 conditions per search)."""
    return "or".join(f"({key}:equals:{criteria_value(v)})" for v in values)


def more_records(payload: Any) -> bool:
    """Whether a Zoho answer says another page follows."""
    return bool(dig(payload, MORE_RECORDS))
