"""The search endpoint's query language: filterGroups of filters, one sort, property values typed for comparison."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from closeloop.model import iso_utc, parse_utc

from .catalog import Prop

OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
RANGE_OPERATORS = frozenset({"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"})
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
_TOKEN_SPLIT = re.compile(r"[\s;,]+")


class QueryError(ValueError):
    """A search request HubSpot would refuse with 400 VALIDATION_ERROR."""


def parse_moment(raw: Any) -> datetime:
    """A datetime property value or filter value: epoch milliseconds, an ISO date or an ISO datetime."""
    text = str(raw).strip()
    if re.fullmatch(r"-?\d+", text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return parse_utc(text + "T00:00:00Z")
    return parse_utc(text)


def typed(prop: Prop, raw: Any) -> Any:
    """A value in the form HubSpot compares it: a datetime, a Decimal, or lower-cased text."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw
    if prop.type in ("datetime", "date"):
        return parse_moment(raw)
    if prop.type == "number":
        return Decimal(str(raw))
    return str(raw).lower()


def normalize_value(prop: Prop, raw: Any) -> str:
    """The stored text of a written value (HubSpot keeps every property as a string); ValueError if invalid."""
    if prop.type in ("datetime", "date"):
        moment = parse_moment(raw)
        return moment.date().isoformat() if prop.type == "date" else iso_utc(moment)
    if prop.type == "number":
        try:
            number = Decimal(str(raw))
        except InvalidOperation:
            raise ValueError(f"{raw!r} is not a valid number") from None
        if not number.is_finite():
            raise ValueError(f"{raw!r} is not a valid number")
        return str(raw) if not isinstance(raw, float) else format(number.normalize(), "f")
    if prop.type == "bool":
        text = str(raw).lower()
        if text not in ("true", "false"):
            raise ValueError(f"{raw!r} is not a valid boolean")
        return text
    if prop.type == "enumeration":
        text = str(raw)
        allowed = [value for value, _ in prop.options]
        if text not in allowed:
            raise ValueError(f"{text!r} was not one of the allowed options: {allowed}")
        return text
    return str(raw)


@dataclass(frozen=True)
class Filter:
    """One compiled filter: property, operator and typed operands."""

    prop: Prop
    operator: str
    value: Any = None
    high: Any = None
    values: tuple[Any, ...] = ()

    def matches(self, actual: Any) -> bool:
        """Whether a record whose (typed) property value is ``actual`` passes."""
        op = self.operator
        if op == "HAS_PROPERTY":
            return actual is not None
        if op == "NOT_HAS_PROPERTY":
            return actual is None
        if op == "NEQ":
            return bool(actual != self.value)
        if op == "NOT_IN":
            return actual not in self.values
        if actual is None:
            return False
        if op == "EQ":
            return bool(actual == self.value)
        if op == "IN":
            return actual in self.values
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            found = any(fnmatch.fnmatchcase(t, str(self.value)) for t in _TOKEN_SPLIT.split(str(actual)) if t)
            return found if op == "CONTAINS_TOKEN" else not found
        try:
            if op == "GT":
                return bool(actual > self.value)
            if op == "GTE":
                return bool(actual >= self.value)
            if op == "LT":
                return bool(actual < self.value)
            if op == "LTE":
                return bool(actual <= self.value)
            return bool(self.value <= actual <= self.high)  # BETWEEN is inclusive at both ends
        except TypeError:
            return False

    def bounds(self) -> tuple[Any, Any]:
        """(lowest, highest) value this filter admits, None where unbounded (for index range scans)."""
        op = self.operator
        if op == "EQ":
            return self.value, self.value
        if op in ("GT", "GTE"):
            return self.value, None
        if op in ("LT", "LTE"):
            return None, self.value
        if op == "BETWEEN":
            return self.value, self.high
        return None, None


def is_range(f: Filter, kind: type) -> bool:
    """Whether ``f`` admits one range of ``kind`` values (finite, for numbers), the kind an ordered index cuts."""
    if f.operator not in RANGE_OPERATORS:
        return False
    operands = (f.value, f.high) if f.operator == "BETWEEN" else (f.value,)
    return all(isinstance(v, kind) and (not isinstance(v, Decimal) or v.is_finite()) for v in operands)


def compile_groups(groups: Any, props: dict[str, Prop]) -> list[list[Filter]]:
    """Check and compile ``filterGroups``; raise :class:`QueryError` where HubSpot answers 400."""
    if not isinstance(groups, list):
        raise QueryError("filterGroups must be a list")
    if len(groups) > MAX_GROUPS:
        raise QueryError(f"Too many filter groups: {len(groups)}; the limit is {MAX_GROUPS}")
    total = sum(len(g.get("filters", [])) for g in groups if isinstance(g, dict))
    if total > MAX_FILTERS:
        raise QueryError(f"Too many filters: {total}; the limit is {MAX_FILTERS}")
    compiled = []
    for group in groups:
        filters = group.get("filters", []) if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS_PER_GROUP:
            raise QueryError(f"Each filter group takes a list of up to {MAX_FILTERS_PER_GROUP} filters")
        compiled.append([_compile(f, props) for f in filters])
    return compiled


def _compile(raw: Any, props: dict[str, Prop]) -> Filter:
    if not isinstance(raw, dict):
        raise QueryError("a filter must be an object")
    name, op = raw.get("propertyName"), raw.get("operator", "EQ")
    prop = props.get(str(name))
    if prop is None:
        raise QueryError(f"There was a problem with the request. Property {name!r} does not exist")
    if op not in OPERATORS:
        raise QueryError(f"Unknown operator {op!r}")
    try:
        if op in ("IN", "NOT_IN"):
            values = raw.get("values")
            if not isinstance(values, list):
                raise QueryError(f"operator {op} needs 'values'")
            return Filter(prop, op, values=tuple(typed(prop, v) for v in values))
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            return Filter(prop, op)
        if "value" not in raw:
            raise QueryError(f"operator {op} needs 'value'")
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            return Filter(prop, op, value=str(raw["value"]).lower())
        high = typed(prop, raw.get("highValue")) if op == "BETWEEN" else None
        if op == "BETWEEN" and high is None:
            raise QueryError("operator BETWEEN needs 'highValue'")
        return Filter(prop, op, value=typed(prop, raw["value"]), high=high)
    except (ValueError, ArithmeticError) as exc:
        if isinstance(exc, QueryError):
            raise
        raise QueryError(f"Invalid value for property {prop.name}: {exc}") from None


def matches(groups: list[list[Filter]], value_of: Callable[[Prop], Any]) -> bool:
    """Groups are ORed, filters within a group ANDed; no groups matches everything."""
    if not groups:
        return True
    return any(all(f.matches(value_of(f.prop)) for f in group) for group in groups)


def time_range(groups: list[list[Filter]], name: str) -> tuple[Any, Any]:
    """The widest (low, high) range of property ``name`` that every group bounds, for an index scan."""
    lows: list[Any] = []
    highs: list[Any] = []
    for group in groups or [[]]:
        ranges = [f.bounds() for f in group if f.prop.name == name]
        group_lows = [low for low, _ in ranges if low is not None]
        group_highs = [high for _, high in ranges if high is not None]
        lows.append(max(group_lows) if group_lows else None)
        highs.append(min(group_highs) if group_highs else None)
    low = None if None in lows else min(lows)
    high = None if None in highs else max(highs)
    return low, high


def parse_sorts(sorts: Any, props: dict[str, Prop]) -> list[tuple[Prop, bool]]:
    """``sorts`` as (property, descending); HubSpot applies one sorting rule per search."""
    if not sorts:
        return []
    if not isinstance(sorts, list):
        raise QueryError("sorts must be a list")
    if len(sorts) > 1:
        raise QueryError("Only one sort is allowed per search request")
    rule = sorts[0]
    if isinstance(rule, str):
        name, descending = rule.lstrip("-"), rule.startswith("-")
    elif isinstance(rule, dict):
        name, descending = str(rule.get("propertyName")), rule.get("direction") == "DESCENDING"
    else:
        raise QueryError("a sort is a property name or {propertyName, direction}")
    prop = props.get(name)
    if prop is None:
        raise QueryError(f"Cannot sort on unknown property {name!r}")
    return [(prop, descending)]


def sort_rows(rows: list[Any], sorts: Sequence[tuple[Prop, bool]], value_of: Callable[[Any, Prop], Any]) -> None:
    """Sort in place; records without a value come last, ties keep id order."""
    for prop, descending in reversed(sorts):
        present = [r for r in rows if value_of(r, prop) is not None]
        missing = [r for r in rows if value_of(r, prop) is None]
        present.sort(key=lambda r: value_of(r, prop), reverse=descending)
        rows[:] = present + missing
