"""v5 query semantics of the emulator: filters, ``orderBy``, ``limit``, ``deleted`` and ``nextPageToken``.

A page token carries the query it continues and the sort key of the last row served, so later pages are keyset
reads that neither skip nor repeat a row when others change meanwhile. Tokens expire after 4 hours (code 210),
one token sequence stops after ``sequence_limit`` records (100,000 in v5; warning 203), and with a token only
``fields`` may be sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from closeloop.model import iso_utc, parse_utc
from closeloop.sandbox.records import Row

MAX_LIMIT, DEFAULT_LIMIT, MAX_FILTER_FIELDS = 1000, 200, 3
TOKEN_TTL = timedelta(hours=4)
SEQUENCE_WARNING = "203;Record count for nextPageToken sequence has been exceeded"
INT_SUFFIXES = ("", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo")
DATE_SUFFIXES = ("", "Before", "BeforeOrEqualTo", "After", "AfterOrEqualTo")
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "After": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "AfterOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "Before": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
    "BeforeOrEqualTo": lambda a, b: a <= b,
}


class QueryError(Exception):
    """A refused query: HTTP status, v5 code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Spec:
    """What one collection can be filtered and ordered by."""

    ints: tuple[str, ...]
    dates: tuple[str, ...]
    exact: tuple[str, ...]
    order: tuple[str, ...]
    recycles: bool
    value: Callable[[Row, str], Any]

    def filters(self) -> dict[str, tuple[str, str]]:
        """Query parameter -> (field, comparison)."""
        found = {f"{name}{suffix}": (name, suffix) for name in self.ints for suffix in INT_SUFFIXES}
        found |= {f"{name}{suffix}": (name, suffix) for name in self.dates for suffix in DATE_SUFFIXES}
        found |= {name: (name, "") for name in self.exact}
        return found


@dataclass(frozen=True)
class Query:
    """A parsed query: filters, order, page size, recycle-bin choice."""

    filters: tuple[tuple[str, str, str], ...]
    order: tuple[tuple[str, bool], ...]
    limit: int
    deleted: str

    def encode(self) -> dict[str, Any]:
        """A JSON-ready copy for a page token."""
        return {"f": self.filters, "o": self.order, "l": self.limit, "d": self.deleted}

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Query:
        """The query a page token carries."""
        return cls(
            tuple(tuple(f) for f in data["f"]), tuple((o[0], bool(o[1])) for o in data["o"]), data["l"], data["d"]
        )


def parse_query(params: Mapping[str, str], spec: Spec) -> Query:
    """The query of a first page; an unknown order, a bad limit or too many filtered fields is refused."""
    known = spec.filters()
    filters = tuple((known[k][0], known[k][1], v) for k, v in params.items() if k in known)
    for name, _, raw in filters:
        _wanted(name, raw, spec)  # a bad value is refused before any row is read
    if len({name for name, _, _ in filters}) > MAX_FILTER_FIELDS:
        raise QueryError(400, 209, "Too many filter fields specified; at most 3 fields may be filtered")
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise QueryError(400, 51, f"Invalid parameter: limit must be between 1 and {MAX_LIMIT}")
    deleted = params.get("deleted", "false").lower()
    if deleted not in ("false", "true", "all") or (deleted != "false" and not spec.recycles):
        raise QueryError(400, 51, f"Invalid parameter: deleted={deleted}")
    return Query(filters, parse_order(params.get("orderBy", "id ASC"), spec), int(raw_limit), deleted)


def parse_order(text: str, spec: Spec) -> tuple[tuple[str, bool], ...]:
    """``orderBy``: a comma list of ``field [ASC|DESC]``; ties always end on id."""
    order: list[tuple[str, bool]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        words = part.split()
        descending = len(words) == 2 and words[1].upper() == "DESC"
        if (
            words[0] not in spec.order
            or len(words) > 2
            or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC"))
        ):
            raise QueryError(400, 51, f"Invalid parameter: orderBy '{part}'; valid fields: {', '.join(spec.order)}")
        order.append((words[0], descending))
    if "id" not in {name for name, _ in order}:
        order.append(("id", False))
    return tuple(order)


def sort_key(row: Row, order: Iterable[tuple[str, bool]], spec: Spec) -> tuple[float, ...]:
    """The row's numeric sort key (times as epoch seconds; descending parts negated)."""
    key = []
    for name, descending in order:
        value = spec.value(row, name)
        number = -math.inf if value is None else (value.timestamp() if isinstance(value, datetime) else float(value))
        key.append(-number if descending else number)
    return tuple(key)


def matches(row: Row, query: Query, spec: Spec) -> bool:
    """True when the row passes every filter and the recycle-bin choice."""
    if (query.deleted == "false" and row.deleted) or (query.deleted == "true" and not row.deleted):
        return False
    for name, suffix, raw in query.filters:
        value = spec.value(row, name)
        wanted = _wanted(name, raw, spec)
        if value is None or not COMPARE[suffix](_comparable(value), wanted):
            return False
    return True


def _comparable(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _wanted(name: str, raw: str, spec: Spec) -> Any:
    if name in spec.ints:
        if not raw.lstrip("-").isdigit():
            raise QueryError(400, 51, f"Invalid parameter: {name} must be an integer")
        return int(raw)
    if name in spec.dates:
        return parse_moment(raw)
    return raw.lower()


def parse_moment(raw: str) -> datetime:
    """A v5 DateTime filter value: ISO 8601 with a numeric offset (a '+' sent unencoded arrives as a space)."""
    text = raw.strip()
    if text.endswith("Z") or "T" not in text or text[-6] not in "+-" or " " in raw:
        raise QueryError(400, 51, f"Invalid date time value '{raw}'; use ISO 8601 with an offset, '+' URL-encoded")
    try:
        return parse_utc(text)
    except ValueError:
        raise QueryError(400, 51, f"Invalid date time value '{raw}'") from None


def encode_token(query: Query, last: tuple[float, ...], served: int, issued: datetime) -> str:
    """An opaque page token: the query, where it stopped, how many rows the sequence served, when issued."""
    body = {"q": query.encode(), "k": list(last), "n": served, "t": iso_utc(issued)}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def decode_token(token: str, now: datetime) -> tuple[Query, tuple[float, ...], int]:
    """The query, last key and served count of a page token; expired (210) or invalid (211) ones are refused."""
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        query, last, served = Query.decode(body["q"]), tuple(float(k) for k in body["k"]), int(body["n"])
        issued = parse_utc(body["t"])
    except (binascii.Error, ValueError, KeyError, TypeError, IndexError):
        raise QueryError(400, 211, "Invalid nextPageToken") from None
    if now - issued > TOKEN_TTL:
        raise QueryError(400, 210, "The nextPageToken has expired")
    return query, last, served
