"""SOQL built safely: every value through :func:`soql_literal`, every name allow-listed against describe.

This module is the only place closeloop assembles SOQL text. Values are never formatted in anywhere else,
and object and field names are never quoted: they are checked against the object's describe instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NewType

from closeloop.model import Cursor, iso_utc

Clause = NewType("Clause", str)
"""A WHERE condition assembled by this module (never from raw text)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_STRING_ESCAPES = {
    "\\": "\\\\",  # first in spirit: a backslash must never combine with what follows it
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}
_OPERATORS = frozenset({"=", "!=", "<", ">", "<=", ">="})
MODSTAMP = "SystemModstamp"


class UnsafeName(ValueError):
    """An object or field name that describe does not list (or that is not a plain identifier)."""


def soql_literal(value: object, *, like: bool = False) -> str:
    """The SOQL literal for ``value``: strings quoted and escaped (``like`` also escapes % and _),
    datetimes in UTC with milliseconds, dates, numbers, booleans and null. The one way values enter SOQL."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no SOQL literal")
        return f"{value:f}"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no SOQL literal")
        return repr(value)
    if isinstance(value, datetime):
        return iso_utc(value)  # refuses naive datetimes; SOQL needs the zone
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        table = {**_STRING_ESCAPES, **_LIKE_ESCAPES} if like else _STRING_ESCAPES
        escaped = []
        for char in value:
            if char in table:
                escaped.append(table[char])
            elif ord(char) < 0x20:
                raise ValueError(f"control character U+{ord(char):04X} cannot be written in a SOQL string")
            else:
                escaped.append(char)
        return "'" + "".join(escaped) + "'"
    raise TypeError(f"no SOQL literal for {type(value).__name__}")


@dataclass(frozen=True)
class AllowList:
    """An object's name and field names as describe reported them; the only names SOQL may carry."""

    object: str
    fields: frozenset[str]

    def __post_init__(self) -> None:
        _plain(self.object)

    def field(self, name: str) -> str:
        """``name`` if describe lists it on this object, else :class:`UnsafeName`."""
        if name not in self.fields or not _NAME.match(name):
            raise UnsafeName(f"{self.object} has no field {name!r} in its describe")
        return name


def _plain(name: str) -> str:
    if not _NAME.match(name):
        raise UnsafeName(f"{name!r} is not a Salesforce API name")
    return name


def object_name(name: str) -> str:
    """An object name safe to put in a URL path or FROM clause before describe has vouched for it."""
    return _plain(name)


# -- conditions ----------------------------------------------------------------------------------------
def compare(allowed: AllowList, name: str, op: str, value: object) -> Clause:
    """``field op literal``."""
    if op not in _OPERATORS:
        raise ValueError(f"unknown SOQL operator {op!r}")
    return Clause(f"{allowed.field(name)} {op} {soql_literal(value)}")


def is_in(allowed: AllowList, name: str, values: Iterable[object]) -> Clause:
    """``field IN (literal, ...)``."""
    literals = [soql_literal(v) for v in values]
    if not literals:
        raise ValueError("IN needs at least one value")
    return Clause(f"{allowed.field(name)} IN ({', '.join(literals)})")


def like(allowed: AllowList, name: str, prefix: str) -> Clause:
    """``field LIKE 'prefix%'`` with the prefix's own % and _ taken literally."""
    return Clause(f"{allowed.field(name)} LIKE {soql_literal(prefix, like=True)[:-1]}%'")


def all_of(*clauses: Clause) -> Clause:
    """Every clause (parenthesised: SOQL refuses AND beside OR without parentheses)."""
    return Clause("(" + " AND ".join(clauses) + ")")


def any_of(*clauses: Clause) -> Clause:
    """Any clause."""
    return Clause("(" + " OR ".join(clauses) + ")")


def select(
    allowed: AllowList,
    fields: Sequence[str],
    where: Clause | None = None,
    order: Sequence[str] = (),
    limit: int | None = None,
) -> str:
    """A SELECT over allow-listed names."""
    parts = ["SELECT", ", ".join(allowed.field(f) for f in fields), "FROM", allowed.object]
    if where is not None:
        parts += ["WHERE", where]
    if order:
        parts += ["ORDER BY", ", ".join(allowed.field(f) for f in order)]
    if limit is not None:
        parts += ["LIMIT", str(int(limit))]
    return " ".join(parts)


def after_cursor(allowed: AllowList, since: Cursor) -> Clause:
    """Records strictly after ``since`` in (SystemModstamp, Id) order; SystemModstamp is not unique."""
    if not since.id:
        return compare(allowed, MODSTAMP, ">=", since.modified_at)
    return any_of(
        compare(allowed, MODSTAMP, ">", since.modified_at),
        all_of(compare(allowed, MODSTAMP, "=", since.modified_at), compare(allowed, "Id", ">", since.id)),
    )


def changes_query(allowed: AllowList, fields: Sequence[str], since: Cursor | None) -> str:
    """The incremental read: every field, after the cursor, in (SystemModstamp, Id) order."""
    where = after_cursor(allowed, since) if since is not None else None
    return select(allowed, fields, where, order=(MODSTAMP, "Id"))
