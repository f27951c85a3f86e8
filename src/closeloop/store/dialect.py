"""The store's SQL is written once, in SQLite's dialect; this turns a statement into PostgreSQL's.

Every table module keeps one text per statement, so both back-ends run the same queries. The few constructs
where the dialects differ are rewritten here, in one place, and nowhere else:

- ``?`` and ``:name`` placeholders become psycopg's ``%s`` and ``%(name)s`` (a literal ``%`` becomes ``%%``);
- ``x IN (SELECT value FROM json_each(?))`` (an id list passed as one JSON array) becomes ``x = ANY(%s)``, and
  the statement remembers which parameter to turn into an array literal (``postgres._array_literal``);
- ``? IS NULL`` becomes ``CAST(%s AS TEXT) IS NULL`` (PostgreSQL must know a parameter's type; every such
  optional filter in the store compares text);
- ``INSERT OR IGNORE`` becomes ``INSERT ... ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` becomes an upsert on
  the table's primary key; ``ON CONFLICT DO UPDATE`` without a target gets the primary key as its target;
- in ``DO UPDATE SET``, a bare column on the right-hand side means the stored row in SQLite but is ambiguous in
  PostgreSQL (it could be ``excluded``'s): it is qualified with the table's name;
- a single-row ``INSERT`` into a table with an ``id`` key gets ``RETURNING id``, which stands in for SQLite's
  ``lastrowid``.

``to_postgres_batch`` turns a statement run once per row into one statement over column arrays (one JSON text
per column, read by ``json_array_elements_text``): the
identifiers it writes come from the store's own SQL text, never from data (hence the S608 waivers).

The translation is a pure function of the text, cached, so a statement costs one dictionary lookup after its
first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "golden": ("id",),
    "links": ("system", "object", "native_id"),
    "cursors": ("connection", "system", "object"),
    "rollups": ("contact_golden_id",),
    "associations": ("deal_golden_id", "contact_golden_id"),
    "pending_associations": ("connection", "deal_golden_id", "system", "object", "contact_native_id"),
    "golden_keys": ("entity", "key", "value", "golden_id"),
    "ledger_contacts": ("contact_golden_id", "ledger_id"),
    "sales_activities": ("system", "activity_id", "person_object", "person_id"),
}
"""Conflict targets for the SQLite forms that leave them implicit (``INSERT OR REPLACE``, a bare ``ON CONFLICT``)."""

ID_TABLES = frozenset({"outbox", "quarantine", "runs", "ledger", "touchpoints"})
"""Tables whose key is a generated integer ``id`` (SQLite's rowid), so an insert can report the id it took."""

_KEYWORDS = frozenset(
    {"and", "or", "not", "is", "null", "in", "case", "when", "then", "else", "end", "excluded", "true", "false"}
    | {"cast", "as", "text"}
)


class DialectError(ValueError):
    """A statement uses a SQLite construct this module does not know how to translate."""


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement in PostgreSQL's dialect, with what the caller must do around it."""

    sql: str
    list_params: tuple[int, ...] = ()
    """Positions of parameters that arrive as a JSON array text and must be passed as a list."""
    returns_id: bool = False
    """The statement ends in ``RETURNING id``: its first row's first value is the inserted row's id."""


_TOKEN = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*')
    | (?P<ident>"(?:[^"]|"")*"|[A-Za-z_][A-Za-z_0-9]*)
    | (?P<param>\?)
    | (?P<named>(?<!:):[A-Za-z_][A-Za-z_0-9]*)
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_ID_LIST = re.compile(r"\bIN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\s*\(\s*\?\s*\)\s*\)", re.IGNORECASE)
_LIST_MARK = "\x00list\x00"
_IS_NULL = re.compile(r"\?(\s+IS\s+NULL\b)", re.IGNORECASE)
_INSERT = re.compile(
    r"^\s*INSERT\s+(?:OR\s+(?P<mode>IGNORE|REPLACE)\s+)?INTO\s+(?P<table>\w+)\s*\((?P<columns>[^)]*)\)",
    re.IGNORECASE,
)
_BARE_CONFLICT = re.compile(r"\bON\s+CONFLICT\s+DO\s+UPDATE\b", re.IGNORECASE)
_DO_UPDATE_SET = re.compile(r"\bDO\s+UPDATE\s+SET\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def to_postgres(sql: str, *, many: bool = False) -> Statement:
    """``sql`` (SQLite's dialect, as the table modules write it) in PostgreSQL's; ``many``: run by executemany."""
    text = _ID_LIST.sub(_LIST_MARK, sql)
    text = _IS_NULL.sub(r"CAST(? AS TEXT)\1", text)
    insert = _INSERT.match(text)
    returns_id = False
    if insert is not None:
        table = insert["table"]
        mode = (insert["mode"] or "").upper()
        text = _INSERT.sub(lambda m: f"INSERT INTO {m['table']} ({m['columns']})", text, count=1)
        if mode == "IGNORE":
            text = text.rstrip() + " ON CONFLICT DO NOTHING"
        elif mode == "REPLACE":
            text = text.rstrip() + _replace_clause(table, insert["columns"])
        if _BARE_CONFLICT.search(text):
            text = _BARE_CONFLICT.sub(f"ON CONFLICT ({', '.join(_key(table))}) DO UPDATE", text)
        text = _qualify_update(text, table)
        if table in ID_TABLES and not many and not _RETURNING.search(text):
            text = text.rstrip() + " RETURNING id"
            returns_id = True
    converted, list_params = _placeholders(text)
    return Statement(converted, list_params, returns_id)


def _key(table: str) -> tuple[str, ...]:
    try:
        return PRIMARY_KEYS[table]
    except KeyError:
        raise DialectError(f"no primary key known for table {table!r}: add it to dialect.PRIMARY_KEYS") from None


def _replace_clause(table: str, columns: str) -> str:
    key = _key(table)
    names = [c.strip() for c in columns.split(",")]
    rest = [c for c in names if c.strip('"') not in key]
    if not rest:
        return f" ON CONFLICT ({', '.join(key)}) DO NOTHING"
    sets = ", ".join(f"{c} = excluded.{c}" for c in rest)
    return f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"


def _qualify_update(text: str, table: str) -> str:
    """In ``DO UPDATE SET a = expr, ...``, write bare columns inside each ``expr`` as ``table.column``."""
    found = _DO_UPDATE_SET.search(text)
    if found is None:
        return text
    head, tail = text[: found.end()], text[found.end() :]
    out: list[str] = []
    depth = 0
    left_side = True  # the next identifier at depth 0 is an assignment target, which stays bare
    previous = ""
    for match in _TOKEN.finditer(tail):
        kind, piece = match.lastgroup, match.group()
        if kind == "ident":
            lowered = piece.lower()
            if lowered in ("returning", "where") and depth == 0:
                out.append(tail[match.start() :])
                break
            if left_side and depth == 0:
                left_side = False
            elif previous != "." and lowered not in _KEYWORDS and not _calls(tail, match.end()):
                piece = f"{table}.{piece}"
        elif kind == "other":
            if piece == "(":
                depth += 1
            elif piece == ")":
                depth -= 1
            elif piece == "," and depth == 0:
                left_side = True
        out.append(piece)
        if kind != "space":
            previous = piece
    return head + "".join(out)


def _calls(text: str, end: int) -> bool:
    """Whether the identifier ending at ``end`` is a function name (followed by an opening parenthesis)."""
    rest = text[end:].lstrip()
    return rest.startswith("(")


def _placeholders(text: str) -> tuple[str, tuple[int, ...]]:
    """Rewrite placeholders for psycopg and find the id-list parameters by position."""
    out: list[str] = []
    lists: list[int] = []
    position = 0
    for match in _TOKEN.finditer(text.replace(_LIST_MARK, "= ANY(\x00)")):
        kind, piece = match.lastgroup, match.group()
        if kind == "param":
            out.append("%s")
            position += 1
        elif kind == "named":
            out.append(f"%({piece[1:]})s")
        elif kind == "other" and piece == "\x00":
            out.append("%s")  # an array literal of unknown type: the column's decides
            lists.append(position)
            position += 1
        elif piece == "%":
            out.append("%%")
        else:
            out.append(piece.replace("%", "%%") if kind == "string" else piece)
    return "".join(out), tuple(lists)


# -- whole batches in one statement -----------------------------------------------------------------------------

INTEGER_COLUMNS = frozenset({"ledger_id", "attempts", "deleted", "version"})
"""Columns a batch casts to ``bigint`` (with ``id`` in ``ID_TABLES``); the others stay text."""


@dataclass(frozen=True, slots=True)
class Batch:
    """A statement run once per row (``executemany``) rewritten to run once for all of them.

    Its parameters are one JSON array text per placeholder column (rows transposed); ``key`` holds the positions,
    among the row's values, of the conflict target of a ``DO UPDATE``: rows repeating a key are reduced to the last
    one, as SQLite's row-by-row execution leaves the last one standing (PostgreSQL refuses to update a row twice in
    one statement). That holds only for updates that set columns from ``excluded``; one reading the stored row is not
    batched.
    """

    sql: str
    key: tuple[int, ...] = ()
    inserts_into: str | None = None
    """The table an INSERT batch adds rows to (None for a DELETE)."""


_VALUES_INSERT = re.compile(
    r"^\s*INSERT\s+(?:OR\s+(?:IGNORE|REPLACE)\s+)?INTO\s+(?P<table>\w+)\s*\((?P<columns>[^)]*)\)"
    r"\s*VALUES\s*\((?P<values>[^()]*)\)",
    re.IGNORECASE,
)
_VALUES_CLAUSE = re.compile(r"\bVALUES\s*\([^()]*\)", re.IGNORECASE)
_CONFLICT_UPDATE = re.compile(r"\bON\s+CONFLICT\s*\((?P<key>[^)]*)\)\s*DO\s+UPDATE\b", re.IGNORECASE)
_EQUALITY_DELETE = re.compile(
    r"^\s*DELETE\s+FROM\s+(?P<table>\w+)\s+WHERE\s+(?P<where>\w+\s*=\s*\?(?:\s+AND\s+\w+\s*=\s*\?)*)\s*$",
    re.IGNORECASE,
)


def _integer(table: str, column: str) -> bool:
    name = column.strip('"')
    return name in INTEGER_COLUMNS or (name == "id" and table in ID_TABLES)


def _column(alias: str, table: str, column: str) -> str:
    """A batch column as read from its JSON array (text), cast where the table's column is an integer."""
    return f"{alias}::bigint" if _integer(table, column) else alias


def _rows_from(count: int) -> str:
    """``count`` JSON-array parameters side by side as rows: one array per column, element i of each is row i.

    Each column travels as one JSON text (orjson writes it in C) rather than a typed array, whose binary form
    psycopg builds in Python element by element: that was a sixth of the sync process's CPU on PostgreSQL.
    """
    return f"ROWS FROM ({', '.join(['json_array_elements_text(%s::json)'] * count)})"


@lru_cache(maxsize=256)
def to_postgres_batch(sql: str) -> Batch | None:
    """``sql`` (run per row) as one statement over arrays, or None when it is not a form this knows.

    Two forms are known: ``INSERT ... VALUES (?, ..., literal, ...)`` (any conflict clause), which becomes
    ``INSERT ... SELECT ... FROM ROWS FROM (json_array_elements_text(column), ...)``, ordered by the row's position
    where the table generates ids (so they follow the input order), and ``DELETE FROM t WHERE a = ? AND b = ?``, which
    becomes ``WHERE (a, b) IN (SELECT ... FROM ROWS FROM (...))``.
    """
    insert = _VALUES_INSERT.match(sql)
    if insert is not None:
        return _insert_batch(sql, insert)
    delete = _EQUALITY_DELETE.match(sql)
    if delete is not None:
        table = delete["table"]
        columns = [part.split("=")[0].strip() for part in re.split(r"\s+AND\s+", delete["where"], flags=re.I)]
        aliases = [f"c{i}" for i in range(len(columns))]
        select = ", ".join(_column(f"v.{a}", table, c) for a, c in zip(aliases, columns, strict=True))
        source = f"SELECT {select} FROM {_rows_from(len(columns))} AS v({', '.join(aliases)})"  # noqa: S608
        target = columns[0] if len(columns) == 1 else f"({', '.join(columns)})"
        return Batch(f"DELETE FROM {table} WHERE {target} IN ({source})")  # noqa: S608
    return None


def _insert_batch(sql: str, insert: re.Match[str]) -> Batch | None:
    names = [c.strip() for c in insert["columns"].split(",")]
    items = [v.strip() for v in insert["values"].split(",")]
    if len(names) != len(items) or any("?" in item and item != "?" for item in items):
        return None
    if "?" in sql[insert.end() :] or ":" in insert["values"]:
        return None  # parameters after VALUES, or named ones: not a plain row insert
    placed = [name for name, item in zip(names, items, strict=True) if item == "?"]
    aliases = [f"c{i}" for i in range(len(placed))]
    select, position = [], 0
    for name, item in zip(names, items, strict=True):
        if item == "?":
            select.append(_column(f"v.{aliases[position]}", insert["table"], name))
            position += 1
        else:
            select.append(item)
    source = f"SELECT {', '.join(select)} FROM {_rows_from(len(placed))} AS v({', '.join(aliases)})"  # noqa: S608
    if insert["table"] in ID_TABLES:  # generated ids must follow the input order: say so, a sort of the page
        source = source.replace(" AS v(", " WITH ORDINALITY AS v(", 1)[:-1] + ", n) ORDER BY v.n"
    translated = to_postgres(sql, many=True).sql
    rewritten = _VALUES_CLAUSE.sub(lambda _: source, translated, count=1)
    key: tuple[int, ...] = ()
    conflict = _CONFLICT_UPDATE.search(rewritten)
    if conflict is not None:
        wanted = [c.strip() for c in conflict["key"].split(",")]
        if not all(c in placed for c in wanted) or f"{insert['table']}." in rewritten[conflict.end() :]:
            # An update that reads the stored row (attempts = attempts + 1) applies once per repeated key row
            # by row; keeping only the last row would change the result: such statements stay row by row.
            return None
        key = tuple(placed.index(c) for c in wanted)
    return Batch(rewritten, key, insert["table"])
