"""The SOQL subset the sandbox understands: tokenizer, parser, binding against an sObject, evaluation.

SELECT field, ... | COUNT() FROM Object [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...]
[LIMIT n] [OFFSET n]; cond has =, !=, <>, <, >, <=, >=, [NOT] IN (...), LIKE, NOT, AND, OR and parentheses
(AND and OR may not be mixed without them, as in Salesforce). Literals: 'strings' with backslash escapes,
numbers, TRUE/FALSE/NULL, dates and datetimes. Text comparisons are case-insensitive, as in Salesforce.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .schema import (
    DATETIME_TYPES,
    ID_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    SfField,
    SObjectType,
    normalize_id,
    to_millis,
)


class SoqlError(Exception):
    """A query Salesforce would refuse, with its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_LIKE_ESCAPES = {"%", "_"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    """One lexical token with its position (for error messages)."""

    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Literal:
    """A literal value as written; ``raw`` keeps a string's escapes for LIKE."""

    kind: str  # string, number, boolean, null, date, datetime
    value: Any
    raw: str = ""


@dataclass(frozen=True)
class Compare:
    """``field op literal``."""

    field: str
    op: str
    value: Literal


@dataclass(frozen=True)
class InList:
    """``field [NOT] IN (literal, ...)``."""

    field: str
    values: tuple[Literal, ...]
    negate: bool


@dataclass(frozen=True)
class Like:
    """``field LIKE 'pattern'``."""

    field: str
    pattern: Literal


@dataclass(frozen=True)
class Logic:
    """AND / OR of several conditions, or NOT of one."""

    op: str
    parts: tuple[Condition, ...]


Condition = Compare | InList | Like | Logic


@dataclass(frozen=True)
class OrderKey:
    """One ORDER BY term."""

    field: str
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    """A parsed SELECT."""

    fields: tuple[str, ...]
    count_only: bool
    sobject: str
    where: Condition | None
    order: tuple[OrderKey, ...]
    limit: int | None
    offset: int


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens; an unknown character or an unterminated string is MALFORMED_QUERY."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise SoqlError("MALFORMED_QUERY", f"unterminated string literal at column {pos + 1}")
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos]}' at column {pos + 1}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def decode_string(raw: str) -> str:
    """The value of a quoted SOQL string; an unknown escape is refused like Salesforce does."""
    body, out, index = raw[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            nxt = body[index + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in _LIKE_ESCAPES:
                out.append(nxt)
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"Invalid string literal {raw}. Illegal character sequence '\\{nxt}' in string literal.",
                )
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self, offset: int = 0) -> Token | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.text.upper() in words

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text == text

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.index += 1
        return token

    def expect_keyword(self, word: str) -> None:
        token = self.take()
        if token.kind != "name" or token.text.upper() != word:
            raise _unexpected(token)

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise _unexpected(token)

    def name(self) -> str:
        token = self.take()
        if token.kind != "name" or token.text.upper() in _RESERVED:
            raise _unexpected(token)
        return token.text

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields, count_only = self.select_list()
        self.expect_keyword("FROM")
        sobject = self.name()
        where = None
        if self.keyword("WHERE"):
            self.take()
            where = self.condition()
        order: list[OrderKey] = []
        if self.keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            order.append(self.order_key())
            while self.at(","):
                self.take()
                order.append(self.order_key())
        limit = self.integer_clause("LIMIT")
        offset = self.integer_clause("OFFSET") or 0
        if self.peek() is not None:
            raise _unexpected(self.take())
        return Query(tuple(fields), count_only, sobject, where, tuple(order), limit, offset)

    def select_list(self) -> tuple[list[str], bool]:
        if self.keyword("COUNT") and (nxt := self.peek(1)) is not None and nxt.text == "(":
            self.take()
            self.expect("(")
            self.expect(")")
            return [], True
        fields = [self.name()]
        while (token := self.peek()) is not None and token.text == ",":
            self.take()
            fields.append(self.name())
        return fields, False

    def order_key(self) -> OrderKey:
        name = self.name()
        descending = False
        if self.keyword("ASC", "DESC"):
            descending = self.take().text.upper() == "DESC"
        nulls_last = descending
        if self.keyword("NULLS"):
            self.take()
            if not self.keyword("FIRST", "LAST"):
                raise _unexpected(self.take())
            nulls_last = self.take().text.upper() == "LAST"
        return OrderKey(name, descending, nulls_last)

    def integer_clause(self, word: str) -> int | None:
        if not self.keyword(word):
            return None
        self.take()
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise _unexpected(token)
        return int(token.text)

    def condition(self) -> Condition:
        first = self.unary()
        joiner = self.peek()
        if joiner is None or not self.keyword("AND", "OR"):
            return first
        op = joiner.text.upper()
        parts = [first]
        while self.keyword("AND", "OR"):
            token = self.take()
            if token.text.upper() != op:
                # Salesforce refuses AND and OR side by side without parentheses.
                raise _unexpected(token)
            parts.append(self.unary())
        return Logic(op, tuple(parts))

    def unary(self) -> Condition:
        if self.keyword("NOT"):
            self.take()
            return Logic("NOT", (self.unary(),))
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.condition()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        field = self.name()
        if self.keyword("IN"):
            self.take()
            return InList(field, self.literal_list(), negate=False)
        if self.keyword("NOT"):
            self.take()
            self.expect_keyword("IN")
            return InList(field, self.literal_list(), negate=True)
        if self.keyword("LIKE"):
            self.take()
            pattern = self.literal()
            if pattern.kind != "string":
                raise SoqlError("MALFORMED_QUERY", "LIKE needs a quoted string")
            return Like(field, pattern)
        token = self.take()
        if token.kind != "op":
            raise _unexpected(token)
        return Compare(field, "!=" if token.text == "<>" else token.text, self.literal())

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect("(")
        values = [self.literal()]
        while (token := self.peek()) is not None and token.text == ",":
            self.take()
            values.append(self.literal())
        self.expect(")")
        return tuple(values)

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            return Literal("string", decode_string(token.text), token.text)
        if token.kind == "number":
            return Literal("number", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "date":
            return Literal("date", date.fromisoformat(token.text))
        if token.kind == "datetime":
            return Literal("datetime", _parse_datetime(token.text))
        if token.kind == "name" and token.text.upper() in ("TRUE", "FALSE"):
            return Literal("boolean", token.text.upper() == "TRUE")
        if token.kind == "name" and token.text.upper() == "NULL":
            return Literal("null", None)
        raise _unexpected(token)


_RESERVED = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "LIMIT",
        "OFFSET",
        "NULL",
        "TRUE",
        "FALSE",
        "ASC",
        "DESC",
        "NULLS",
    }
)


def _unexpected(token: Token) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}' at column {token.pos + 1}")


def _parse_datetime(text: str) -> datetime:
    cleaned = text[:-1] + "+00:00" if text.endswith("Z") else text
    if cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    return datetime.fromisoformat(cleaned).astimezone(UTC)


def parse(text: str) -> Query:
    """Parse a SOQL query; refused syntax raises :class:`SoqlError` (MALFORMED_QUERY)."""
    return _Parser(text).query()


# -- binding: names resolved against the sObject, literals checked against field types ------------------
def bind(query: Query, sobject: SObjectType) -> Query:
    """The query with canonical field names; unknown fields and mistyped literals are refused."""

    def field(name: str) -> SfField:
        found = sobject.lookup(name)
        if found is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
                "or the describe call for the appropriate names.",
            )
        return found

    def literal(target: SfField, value: Literal, op: str) -> Literal:
        if value.kind == "null":
            if op not in ("=", "!=", "IN"):
                raise SoqlError("MALFORMED_QUERY", f"null can only be compared with = or != ({target.name})")
            return value
        return _coerce(target, value)

    def walk(cond: Condition) -> Condition:
        if isinstance(cond, Logic):
            return Logic(cond.op, tuple(walk(part) for part in cond.parts))
        target = field(cond.field)
        if isinstance(cond, Compare):
            return Compare(target.name, cond.op, literal(target, cond.value, cond.op))
        if isinstance(cond, InList):
            return InList(target.name, tuple(literal(target, v, "IN") for v in cond.values), cond.negate)
        if target.type not in TEXT_TYPES:
            raise SoqlError("INVALID_FIELD", f"invalid operator on field '{target.name}': LIKE")
        return Like(target.name, cond.pattern)

    names = [field(name).name for name in query.fields]
    duplicate = next((n for i, n in enumerate(names) if n.lower() in {m.lower() for m in names[:i]}), None)
    if duplicate:
        raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {duplicate}")
    order = tuple(OrderKey(field(k.field).name, k.descending, k.nulls_last) for k in query.order)
    where = walk(query.where) if query.where is not None else None
    return Query(tuple(names), query.count_only, sobject.name, where, order, query.limit, query.offset)


def _coerce(target: SfField, value: Literal) -> Literal:
    kind = target.type
    expected = (
        "dateTime"
        if kind in DATETIME_TYPES
        else "date"
        if kind == "date"
        else "number"
        if kind in NUMBER_TYPES
        else "boolean"
        if kind == "boolean"
        else "string"
    )
    ok = {
        "dateTime": value.kind == "datetime",
        "date": value.kind == "date",
        "number": value.kind == "number",
        "boolean": value.kind == "boolean",
        "string": value.kind == "string",
    }[expected]
    if not ok:
        quoted = "should be enclosed in quotes" if expected == "string" else "should not be enclosed in quotes"
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{target.name}' must be of type {expected} and {quoted}",
        )
    if kind in ID_TYPES:
        normal = normalize_id(value.value)
        if normal is None:
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value.value}")
        return Literal("string", normal, value.raw)
    if kind in DATETIME_TYPES:
        return Literal("datetime", to_millis(value.value), value.raw)
    return value


# -- evaluation --------------------------------------------------------------------------------------
Getter = Callable[[Any, str], Any]


_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compare(left: Any, op: str, right: Any) -> bool:
    if right is None:
        return (left is None) == (op == "=")
    if op == "=":
        return left is not None and _fold(left) == _fold(right)
    if op == "!=":
        return left is None or _fold(left) != _fold(right)
    if left is None:
        return False
    left, right = _fold(left), _fold(right)
    if isinstance(right, date) and not isinstance(left, date):
        left = date.fromisoformat(str(left)[:10])
    return bool(_ORDERING[op](left, right))


def like_regex(raw: str) -> re.Pattern[str]:
    """A case-insensitive regex for a LIKE pattern: % any run, _ one character, \\% and \\_ literal."""
    body, out, index = raw[1:-1], ["^"], 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            nxt = body[index + 1]
            out.append(re.escape(_ESCAPES.get(nxt, nxt)))
            index += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    out.append("$")
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def compile_condition(cond: Condition, get: Getter) -> Callable[[Any], bool]:
    """A predicate for a bound condition, built once per query: IN lists become sets and LIKE patterns regexes
    here, not once per row (nor looked up in a cache keyed by the condition, whose hash walks every literal)."""
    if isinstance(cond, Logic):
        parts = [compile_condition(part, get) for part in cond.parts]
        if cond.op == "AND":
            return lambda row: all(part(row) for part in parts)
        if cond.op == "OR":
            return lambda row: any(part(row) for part in parts)
        inner = parts[0]
        return lambda row: not inner(row)
    name = cond.field
    if isinstance(cond, Compare):
        op, right = cond.op, cond.value.value
        return lambda row: _compare(get(row, name), op, right)
    if isinstance(cond, InList):
        folded = frozenset(_fold(v.value) for v in cond.values if v.value is not None)
        has_null, negate = any(v.value is None for v in cond.values), cond.negate

        def within(row: Any) -> bool:
            value = get(row, name)
            found = (value is None and has_null) or (value is not None and _fold(value) in folded)
            return found != negate

        return within
    pattern = like_regex(cond.pattern.raw)

    def like(row: Any) -> bool:
        value = get(row, name)
        return value is not None and pattern.match(str(value)) is not None

    return like


def matches(cond: Condition, row: Any, get: Getter) -> bool:
    """True when ``row`` satisfies a bound condition (compile once with :func:`compile_condition` for many rows)."""
    return compile_condition(cond, get)(row)


def sort_rows(rows: list[Any], order: Iterable[OrderKey], get: Getter) -> list[Any]:
    """Rows in ORDER BY order (stable sorts from the last key to the first; keys of one direction in one sort).

    Rows that already stand in that order (a change read off the (modified, id) index) are left as they are after
    one pass that holds two keys at a time: a stable sort would not move them, and sorting a million rows would
    first hold a million keys.
    """
    keys = list(order)
    while keys:
        # The trailing keys that share the last key's direction sort at once, on a tuple of their sort keys.
        run = 1
        while run < len(keys) and keys[-run - 1].descending == keys[-1].descending:
            run += 1
        sort_key = _run_key([_sort_term(key, get) for key in keys[-run:]])
        descending = keys[-1].descending
        if not _in_order(rows, sort_key, descending=descending):
            rows.sort(key=sort_key, reverse=descending)
        del keys[-run:]
    return rows


def _run_key(terms: list[Callable[[Any], tuple[int, Any]]]) -> Callable[[Any], Any]:
    if len(terms) == 1:
        return terms[0]
    if len(terms) == 2:
        first, second = terms
        return lambda row: (first(row), second(row))
    return lambda row: tuple([term(row) for term in terms])


def _in_order(rows: list[Any], key: Callable[[Any], Any], *, descending: bool) -> bool:
    """Whether a stable sort on ``key`` would leave ``rows`` as they are."""
    previous = None
    for index, row in enumerate(rows):
        current = key(row)
        if index and (current > previous if descending else current < previous):
            return False
        previous = current
    return True


def _sort_term(key: OrderKey, get: Getter) -> Callable[[Any], tuple[int, Any]]:
    name, desc, last = key.field, key.descending, key.nulls_last
    # reverse=True flips everything for DESC, so a null's rank flips with it to keep its place.
    null = (2 if last != desc else 0, 0)

    def term(row: Any) -> tuple[int, Any]:
        value = _fold(get(row, name))
        return (1, value) if value is not None else null

    return term


def lower_bound(cond: Condition | None, name: str) -> Any:
    """The least value of field ``name`` a matching row can have, when the condition implies one."""
    if cond is None:
        return None
    if isinstance(cond, Compare):
        if cond.field == name and cond.op in ("=", ">", ">=") and cond.value.value is not None:
            return cond.value.value
        return None
    if isinstance(cond, Logic) and cond.op in ("AND", "OR"):
        bounds = [lower_bound(part, name) for part in cond.parts]
        if cond.op == "AND":
            known = [b for b in bounds if b is not None]
            return max(known) if known else None
        return None if any(b is None for b in bounds) else min(bounds)
    return None


def equal_values(cond: Condition | None, names: Iterable[str]) -> tuple[str, list[Any]] | None:
    """(field, values) when the condition requires one of ``names`` to equal one of a few values."""
    wanted = set(names)
    if isinstance(cond, Compare) and cond.field in wanted and cond.op == "=" and cond.value.value is not None:
        return cond.field, [cond.value.value]
    if isinstance(cond, InList) and cond.field in wanted and not cond.negate:
        return cond.field, [v.value for v in cond.values if v.value is not None]
    if isinstance(cond, Logic) and cond.op == "AND":
        for part in cond.parts:
            found = equal_values(part, wanted)
            if found:
                return found
    return None
