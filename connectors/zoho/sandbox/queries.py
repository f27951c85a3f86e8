"""Zoho's two query languages as the emulator needs them: search ``criteria`` and a COQL ``SELECT``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from closeloop.model import parse_utc

Predicate = Callable[[dict[str, Any]], bool]
"""A test on a record's values (``id``, ``Modified_Time`` as aware UTC at second resolution, other fields)."""


class QueryError(ValueError):
    """A query Zoho would refuse; ``code``/``message``/``details`` are Zoho's error body."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def comparable(value: Any) -> Any:
    """A value in the form comparisons use: lookups by id, strings case-insensitively, times in UTC."""
    if isinstance(value, dict):
        return comparable(value.get("id"))
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)", value):
            return parse_utc(value)
        if value.isdigit() and len(value) > 12:  # record ids are bigints
            return int(value)
        return value.casefold()
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = comparable(left), comparable(right)
    if op in ("=", "equals"):
        return bool(left == right)
    if op in ("!=", "<>", "not_equal"):
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op in (">", "greater_than"):
            return bool(left > right)
        if op in (">=", "greater_equal"):
            return bool(left >= right)
        if op in ("<", "less_than"):
            return bool(left < right)
        if op in ("<=", "less_equal"):
            return bool(left <= right)
    except TypeError:
        return False
    raise QueryError("INVALID_QUERY", "invalid query formed", operator=op)


# -- search criteria: (Email:equals:a@b.com)and((Lead_Source:in:Chat,Partner)or(...)) ---------------------
CRITERIA_OPERATORS = (
    "equals",
    "not_equal",
    "starts_with",
    "in",
    "greater_than",
    "greater_equal",
    "less_than",
    "less_equal",
    "between",
)


def parse_criteria(text: str) -> Predicate:
    """Compile Zoho search criteria; backslash escapes ``(``, ``)`` and ``,`` inside values."""
    parser = _CriteriaParser(text)
    predicate = parser.expression()
    if parser.pos != len(text):
        raise QueryError("INVALID_QUERY", "invalid query formed", reason="unbalanced criteria")
    return predicate


@dataclass
class _CriteriaParser:
    text: str
    pos: int = 0
    conditions: int = 0

    def expression(self) -> Predicate:
        terms = [self.term()]
        joins: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] != ")":
            match = re.match(r"\s*(and|or)\s*", self.text[self.pos :], re.IGNORECASE)
            if not match:
                raise QueryError("INVALID_QUERY", "invalid query formed", reason="expected and/or")
            joins.append(match.group(1).lower())
            self.pos += match.end()
            terms.append(self.term())
        return _fold(terms, joins)

    def term(self) -> Predicate:
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise QueryError("INVALID_QUERY", "invalid query formed", reason="expected (")
        self.pos += 1
        nested = self.pos < len(self.text) and self.text[self.pos] == "("
        inner = self.expression() if nested else self.condition()
        if self.pos >= len(self.text) or self.text[self.pos] != ")":
            raise QueryError("INVALID_QUERY", "invalid query formed", reason="expected )")
        self.pos += 1
        return inner

    def condition(self) -> Predicate:
        raw, escaped = [], False
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if escaped:
                raw.append("\x00" + char)  # keep escaped separators apart from real ones
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == ")":
                break
            else:
                raw.append(char)
            self.pos += 1
        self.conditions += 1
        if self.conditions > 10:
            raise QueryError("LIMIT_EXCEEDED", "Maximum lookup field limit in criteria exceeded", limit=10)
        parts = "".join(raw).split(":", 2)
        if len(parts) != 3 or parts[1] not in CRITERIA_OPERATORS:
            raise QueryError("INVALID_QUERY", "invalid query formed", reason="field:operator:value expected")
        name, op, value = parts
        values = (
            [v.replace("\x00", "") for v in value.split(",")]
            if op in ("in", "between")
            else [value.replace("\x00", "")]
        )
        return _criterion(name.replace("\x00", ""), op, values)


def _criterion(name: str, op: str, values: list[str]) -> Predicate:
    if op == "in":
        return lambda rec: any(_compare("=", rec.get(name), v) for v in values)
    if op == "between":
        low, high = values[0], values[-1]
        return lambda rec: _compare(">=", rec.get(name), low) and _compare("<=", rec.get(name), high)
    if op == "starts_with":
        prefix = values[0].casefold()
        return lambda rec: str(comparable(rec.get(name)) or "").startswith(prefix)
    value = values[0]
    return lambda rec: _compare(op, rec.get(name), value)


def _fold(terms: list[Predicate], joins: list[str]) -> Predicate:
    # Zoho evaluates unparenthesised chains left to right.
    result = terms[0]
    for join, term in zip(joins, terms[1:], strict=True):
        result = _and(result, term) if join == "and" else _or(result, term)
    return result


def _and(a: Predicate, b: Predicate) -> Predicate:
    return lambda rec: a(rec) and b(rec)


def _or(a: Predicate, b: Predicate) -> Predicate:
    return lambda rec: a(rec) or b(rec)


# -- COQL -------------------------------------------------------------------------------------------------
COQL_MAX_LIMIT = 2000
COQL_MAX_ROWS = 100_000
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<op>>=|<=|!=|<>|=|>|<)"
    r"|(?P<punct>[(),*])|(?P<word>[A-Za-z_$][\w$.]*))"
)


@dataclass
class CoqlQuery:
    """A parsed ``SELECT``: columns, module, predicate, the lower bound on Modified_Time, order and window."""

    columns: list[str]
    module: str
    where: Predicate = field(default=lambda rec: True)
    where_fields: set[str] = field(default_factory=set)
    modified_from: datetime | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)
    offset: int = 0
    limit: int = 200


def parse_coql(text: str) -> CoqlQuery:
    """Parse the COQL subset closeloop uses; errors carry Zoho's COQL error codes."""
    tokens = _tokenize(text)
    parser = _CoqlParser(tokens)
    return parser.query()


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError("SYNTAX_ERROR", "invalid query formed", near=text[pos : pos + 20], line=1, column=pos + 1)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


@dataclass
class _CoqlParser:
    tokens: list[tuple[str, str]]
    pos: int = 0
    where_fields: set[str] = field(default_factory=set)
    lower: datetime | None = None

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.tokens[index][1] if index < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        if self.pos >= len(self.tokens):
            raise QueryError("SYNTAX_ERROR", "invalid query formed", near="end", line=1, column=0)
        value = self.tokens[self.pos][1]
        if expected is not None and value.lower() != expected:
            raise QueryError("SYNTAX_ERROR", "invalid query formed", near=value, line=1, column=self.pos + 1)
        self.pos += 1
        return value

    def keyword(self, word: str) -> bool:
        if self.peek().lower() == word:
            self.pos += 1
            return True
        return False

    def query(self) -> CoqlQuery:
        self.take("select")
        columns = [self.take()]
        while self.keyword(","):
            columns.append(self.take())
        self.take("from")
        query = CoqlQuery(columns=columns, module=self.take())
        if self.keyword("where"):
            query.where = self.disjunction(top=True)
        query.where_fields, query.modified_from = self.where_fields, self.lower
        if self.keyword("order"):
            self.take("by")
            query.order.append(self.order_item())
            while self.keyword(","):
                query.order.append(self.order_item())
        if self.keyword("limit"):
            first = int(self.take())
            if self.keyword(","):
                query.offset, query.limit = first, int(self.take())
            else:
                query.limit = first
                if self.keyword("offset"):
                    query.offset = int(self.take())
        if self.pos != len(self.tokens):
            raise QueryError("SYNTAX_ERROR", "invalid query formed", near=self.peek(), line=1, column=0)
        if query.limit > COQL_MAX_LIMIT:
            raise QueryError("LIMIT_EXCEEDED", "limit exceeded", by="limit", limit=COQL_MAX_LIMIT)
        if query.offset + query.limit > COQL_MAX_ROWS:
            raise QueryError("LIMIT_EXCEEDED", "limit exceeded", by="offset", limit=COQL_MAX_ROWS)
        return query

    def order_item(self) -> tuple[str, bool]:
        name = self.take()
        descending = False
        if self.peek().lower() in ("asc", "desc"):
            descending = self.take().lower() == "desc"
        return name, descending

    def disjunction(self, *, top: bool = False) -> Predicate:
        saved = self.lower
        terms = [self.conjunction(top=top)]
        while self.keyword("or"):
            self.lower = saved  # a bound under OR bounds nothing
            terms.append(self.conjunction())
        return _fold(terms, ["or"] * (len(terms) - 1))

    def conjunction(self, *, top: bool = False) -> Predicate:
        terms = [self.atom(top=top)]
        while self.keyword("and"):
            terms.append(self.atom(top=top))
        return _fold(terms, ["and"] * (len(terms) - 1))

    def atom(self, *, top: bool = False) -> Predicate:
        if self.keyword("("):
            inner = self.disjunction(top=top)
            self.take(")")
            return inner
        name = self.take()
        self.where_fields.add(name)
        if self.keyword("is"):
            negate = self.keyword("not")
            self.take("null")
            return lambda rec: (rec.get(name) in (None, "")) != negate
        negate = self.keyword("not")
        if self.keyword("in"):
            self.take("(")
            values = [self.literal()]
            while self.keyword(","):
                values.append(self.literal())
            self.take(")")
            return lambda rec: any(_compare("=", rec.get(name), v) for v in values) != negate
        if self.keyword("between"):
            low = self.literal()
            self.take("and")
            high = self.literal()
            return lambda rec: _compare(">=", rec.get(name), low) and _compare("<=", rec.get(name), high)
        if self.keyword("like"):
            pattern = re.escape(str(self.literal()).casefold()).replace("%", ".*")
            return lambda rec: bool(re.fullmatch(pattern, str(comparable(rec.get(name)) or ""))) != negate
        op = self.take()
        if op not in ("=", "!=", "<>", ">", ">=", "<", "<="):
            raise QueryError("SYNTAX_ERROR", "invalid query formed", near=op, line=1, column=self.pos)
        value = self.literal()
        if top and name == "Modified_Time" and op in (">", ">="):
            bound = parse_utc(str(value))
            self.lower = bound + timedelta(seconds=1) if op == ">" else bound
        return lambda rec: _compare(op, rec.get(name), value)

    def literal(self) -> Any:
        kind, value = self.tokens[self.pos] if self.pos < len(self.tokens) else ("", "")
        self.pos += 1
        if kind == "string":
            return value[1:-1].replace("\\'", "'")
        if kind == "number":
            return float(value) if "." in value else int(value)
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise QueryError("INVALID_QUERY", "value given seems to be invalid for the column", near=value)


def second(moment: datetime) -> datetime:
    """A stamp at Zoho's resolution: whole seconds."""
    return moment.astimezone(UTC).replace(microsecond=0)


def in_time_order(rows: Iterable[Any], key: Callable[[Any], tuple[datetime, int]]) -> Iterator[Any]:
    """Re-sort rows from (fine time, id) order into (whole second, id) order, one second at a time."""
    group: list[Any] = []
    current: datetime | None = None
    for row in rows:
        stamp = key(row)[0]
        if current is not None and stamp != current:
            yield from sorted(group, key=key)
            group = []
        current = stamp
        group.append(row)
    yield from sorted(group, key=key)
