"""In-memory record tables for the vendor emulators, indexed by (modified_at, id) like a change stream.

A million seeded rows must fit in a benchmark process, so a row is a slotted object, and its field values are held
in a dict that shares its keys with the table's other rows (see :meth:`RecordTable.new_fields`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]  # ships no stubs

from closeloop.model import Cursor, utc


@dataclass(slots=True)
class Row:
    """One stored record of an emulated vendor object."""

    id: str
    fields: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    deleted: bool = False
    merged_into: str | None = None

    @property
    def key(self) -> tuple[datetime, str]:
        """The row's position in the change index."""
        return (self.modified_at, self.id)


@dataclass
class SandboxClock:
    """The emulator's clock: real time, or frozen at a set moment, or a fixed stamp for mass updates."""

    source: Callable[[], datetime]
    frozen: datetime | None = None

    def now(self) -> datetime:
        """The current sandbox time (aware UTC)."""
        return utc(self.frozen) if self.frozen is not None else utc(self.source())


class _AfterAllIds:
    """Sorts after every id: ``(moment, AFTER_ALL_IDS)`` lies after each key of ``moment`` in the change index."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return other is self

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __ge__(self, other: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "AFTER_ALL_IDS"


AFTER_ALL_IDS: Any = _AfterAllIds()


def sequential_ids(prefix: str = "", start: int = 1, width: int = 0) -> Callable[[], str]:
    """An id factory producing prefix + zero-padded counter, the way vendors hand out ids."""
    counter = itertools.count(start)
    return lambda: f"{prefix}{next(counter):0{width}d}"


@dataclass
class RecordTable:
    """The rows of one emulated object, with unique-field indexes and (modified_at, id) indexes.

    Live and deleted rows are indexed apart: a search counts and slices the live ones by position, and a read of
    the whole change stream merges both.
    """

    name: str
    clock: SandboxClock
    new_id: Callable[[], str]
    unique: tuple[str, ...] = ()
    normalize: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda fields: fields)
    rows: dict[str, Row] = field(default_factory=dict)
    _live: SortedList = field(default_factory=SortedList)
    _gone: SortedList = field(default_factory=SortedList)
    _unique: dict[str, dict[Any, str]] = field(default_factory=dict)
    _shape: type = field(init=False)
    _history: dict[str, dict[str, list[tuple[Any, datetime]]]] = field(default_factory=dict)
    """row id -> field -> (value, when set), oldest first; kept only for rows updated since they were inserted."""

    def __post_init__(self) -> None:
        self._unique = {name: {} for name in self.unique}
        self._shape = type(f"{self.name}Fields", (), {})

    def new_fields(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A fields dict holding ``values``, sharing its keys with the table's other rows.

        CPython keeps the attribute dicts of one class's instances as key-sharing ("split") dicts: one keys table
        for the class, a values array per instance (256 bytes for a seeded contact's 23 fields, where a
        plain dict took 464 to 832). Rows written with the same fields in the same order (every seeded row) share
        keys; past that CPython turns a dict into a plain one on its own, so this saves memory and never changes
        what a dict does.
        """
        fields: dict[str, Any] = self._shape().__dict__
        for name, value in (values or {}).items():
            fields[name] = value
        return fields

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, row_id: str, *, include_deleted: bool = False) -> Row | None:
        """The row with this id, if it exists (and is not deleted unless asked)."""
        row = self.rows.get(row_id)
        if row is None or (row.deleted and not include_deleted):
            return None
        return row

    def find(self, field_name: str, value: Any) -> Row | None:
        """The live row whose unique field has this value."""
        row_id = self._unique.get(field_name, {}).get(_unique_value(value))
        return self.get(row_id) if row_id else None

    def live(self) -> Iterator[Row]:
        """Every row not deleted, in id insertion order."""
        return (row for row in self.rows.values() if not row.deleted)

    def deleted(self) -> Iterator[Row]:
        """Every deleted row, in (modified_at, id) order."""
        rows = self.rows
        return (rows[key[1]] for key in self._gone)

    def changed_after(self, after: Cursor | None, *, include_deleted: bool = False) -> Iterator[Row]:
        """Rows strictly after ``after`` in (modified_at, id) order."""
        start = None if after is None else (after.modified_at, after.id)
        keys: Iterable[tuple[datetime, str]] = self._keys_after(self._live, start)
        if include_deleted and self._gone:
            keys = heapq.merge(keys, self._keys_after(self._gone, start))
        rows = self.rows
        for key in keys:
            yield rows[key[1]]

    @staticmethod
    def _keys_after(index: SortedList, start: tuple[datetime, str] | None) -> Iterator[tuple[datetime, str]]:
        return index.irange(minimum=start, inclusive=(False, True)) if start else iter(index)

    # -- the live change index by position (for searches that count and slice) -------------------------------
    def live_count(self) -> int:
        """How many rows are live."""
        return len(self._live)

    def live_position(self, moment: datetime, *, after: bool) -> int:
        """The position in live (modified_at, id) order of the first row modified at or after ``moment``, or
        with ``after``, of the first modified after it."""
        return int(self._live.bisect_left((moment, AFTER_ALL_IDS) if after else (moment,)))

    def live_key(self, position: int) -> tuple[datetime, str]:
        """The (modified_at, id) of the live row at ``position``."""
        key: tuple[datetime, str] = self._live[position]
        return key

    def live_rows(self, start: int, stop: int) -> Iterator[Row]:
        """The live rows at positions ``start`` to ``stop`` (excluded), in (modified_at, id) order."""
        rows = self.rows
        return (rows[key[1]] for key in self._live.islice(start, stop))

    def __len__(self) -> int:
        return len(self._live)

    def field_history(self, row_id: str, name: str) -> list[tuple[Any, datetime]]:
        """The values a field of a row has had, newest first, each with when it was set (a property history).

        A field set when the row was inserted and never changed since has one entry, at the row's creation.
        """
        row = self.rows.get(row_id)
        if row is None:
            return []
        kept = self._history.get(row_id, {}).get(name)
        if kept:
            return list(reversed(kept))
        value = row.fields.get(name)
        return [] if value in (None, "") else [(value, row.created_at)]

    # -- writes ------------------------------------------------------------------------------------------
    def insert(self, fields: Mapping[str, Any], *, row_id: str | None = None, at: datetime | None = None) -> Row:
        """Create a row; unique fields must not collide (check with :meth:`conflicts` first)."""
        moment = at or self.clock.now()
        row = Row(row_id or self.new_id(), self.new_fields(self.normalize(dict(fields))), moment, moment)
        self.rows[row.id] = row
        self._live.add(row.key)
        self._index_unique(row)
        return row

    def update(self, row_id: str, fields: Mapping[str, Any], *, at: datetime | None = None) -> Row:
        """Change fields of a live row and bump its modified time."""
        row = self.rows[row_id]
        moment = utc(at or self.clock.now())
        values = self.normalize(dict(fields))
        self._remember(row, values, moment)
        self._unindex_unique(row)
        row.fields.update(values)
        self._index_unique(row)
        self._move(row, moment)
        return row

    def _remember(self, row: Row, values: Mapping[str, Any], moment: datetime) -> None:
        """Add the fields an update changes to the row's history (the value before it, when first changed)."""
        history = None
        for name, value in values.items():
            old = row.fields.get(name)
            if value == old:
                continue
            history = self._history.setdefault(row.id, {}) if history is None else history
            kept = history.setdefault(name, [])
            if not kept and old not in (None, ""):
                kept.append((old, row.created_at))
            kept.append((value, moment))

    def delete(self, row_id: str, *, at: datetime | None = None) -> Row:
        """Mark a row deleted (it stays visible to reads that include deleted rows)."""
        row = self.rows[row_id]
        self._unindex_unique(row)
        self._unkey(row)
        row.deleted = True
        row.modified_at = utc(at or self.clock.now())
        self._gone.add(row.key)
        return row

    def merge(self, loser_id: str, winner_id: str, *, at: datetime | None = None) -> Row:
        """Merge ``loser`` into ``winner``: the loser is deleted with ``merged_into`` set."""
        moment = at or self.clock.now()
        loser = self.delete(loser_id, at=moment)
        loser.merged_into = winner_id
        winner = self.rows[winner_id]
        for name, value in loser.fields.items():
            if winner.fields.get(name) in (None, "") and value not in (None, ""):
                winner.fields[name] = value
        self._index_unique(winner)  # a unique value the winner took over from the loser
        self._move(winner, moment)
        return winner

    def restamp(self, row_ids: list[str], at: datetime) -> None:
        """Give many rows one modified time (month-end mass update)."""
        for row_id in row_ids:
            self._move(self.rows[row_id], at)

    def add_unique(self, name: str) -> None:
        """Index a field as unique from now on (a unique field created through a vendor's metadata API)."""
        if name in self._unique:
            return
        self.unique = (*self.unique, name)
        self._unique[name] = {}
        for row in self.rows.values():
            value = _unique_value(row.fields.get(name))
            if value is not None and not row.deleted:
                self._unique[name][value] = row.id

    def conflicts(self, fields: Mapping[str, Any], *, except_id: str | None = None) -> str | None:
        """The unique field that ``fields`` would duplicate, if any."""
        normal = self.normalize(dict(fields))
        for name in self.unique:
            owner = self._unique[name].get(_unique_value(normal.get(name)))
            if owner and owner != except_id and not self.rows[owner].deleted:
                return name
        return None

    def _move(self, row: Row, at: datetime) -> None:
        self._unkey(row)
        row.modified_at = utc(at)
        (self._gone if row.deleted else self._live).add(row.key)

    def _unkey(self, row: Row) -> None:
        (self._gone if row.deleted else self._live).discard(row.key)

    def _index_unique(self, row: Row) -> None:
        for name in self.unique:
            value = _unique_value(row.fields.get(name))
            if value is not None:
                self._unique[name][value] = row.id

    def _unindex_unique(self, row: Row) -> None:
        for name in self.unique:
            value = _unique_value(row.fields.get(name))
            if value is not None and self._unique[name].get(value) == row.id:
                del self._unique[name][value]


def _unique_value(value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        lower = value.lower()
        return value if lower == value else lower  # an index key shares the stored text when it can
    return value
