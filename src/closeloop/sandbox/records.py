"""In-memory record tables for the vendor emulators, indexed by (modified_at, id) like a change stream."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]  # ships no stubs

from closeloop.model import Cursor, utc


@dataclass
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


def sequential_ids(prefix: str = "", start: int = 1, width: int = 0) -> Callable[[], str]:
    """An id factory producing prefix + zero-padded counter, the way vendors hand out ids."""
    counter = itertools.count(start)
    return lambda: f"{prefix}{next(counter):0{width}d}"


@dataclass
class RecordTable:
    """The rows of one emulated object, with unique-field indexes and a (modified_at, id) index."""

    name: str
    clock: SandboxClock
    new_id: Callable[[], str]
    unique: tuple[str, ...] = ()
    normalize: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda fields: fields)
    rows: dict[str, Row] = field(default_factory=dict)
    _index: SortedList = field(default_factory=SortedList)
    _unique: dict[str, dict[Any, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._unique = {name: {} for name in self.unique}

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

    def changed_after(self, after: Cursor | None, *, include_deleted: bool = False) -> Iterator[Row]:
        """Rows strictly after ``after`` in (modified_at, id) order."""
        start = None if after is None else (after.modified_at, after.id)
        keys = self._index.irange(minimum=start, inclusive=(False, True)) if start else iter(self._index)
        for key in keys:
            row = self.rows[key[1]]
            if include_deleted or not row.deleted:
                yield row

    def __len__(self) -> int:
        return sum(1 for _ in self.live())

    # -- writes ------------------------------------------------------------------------------------------
    def insert(self, fields: Mapping[str, Any], *, row_id: str | None = None, at: datetime | None = None) -> Row:
        """Create a row; unique fields must not collide (check with :meth:`conflicts` first)."""
        moment = at or self.clock.now()
        row = Row(row_id or self.new_id(), self.normalize(dict(fields)), moment, moment)
        self.rows[row.id] = row
        self._index.add(row.key)
        self._index_unique(row)
        return row

    def update(self, row_id: str, fields: Mapping[str, Any], *, at: datetime | None = None) -> Row:
        """Change fields of a live row and bump its modified time."""
        row = self.rows[row_id]
        self._unindex_unique(row)
        row.fields.update(self.normalize(dict(fields)))
        self._index_unique(row)
        self._move(row, at or self.clock.now())
        return row

    def delete(self, row_id: str, *, at: datetime | None = None) -> Row:
        """Mark a row deleted (it stays visible to reads that include deleted rows)."""
        row = self.rows[row_id]
        self._unindex_unique(row)
        row.deleted = True
        self._move(row, at or self.clock.now())
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
        self._move(winner, moment)
        return winner

    def restamp(self, row_ids: list[str], at: datetime) -> None:
        """Give many rows one modified time (month-end mass update)."""
        for row_id in row_ids:
            self._move(self.rows[row_id], at)

    def conflicts(self, fields: Mapping[str, Any], *, except_id: str | None = None) -> str | None:
        """The unique field that ``fields`` would duplicate, if any."""
        normal = self.normalize(dict(fields))
        for name in self.unique:
            owner = self._unique[name].get(_unique_value(normal.get(name)))
            if owner and owner != except_id and not self.rows[owner].deleted:
                return name
        return None

    def _move(self, row: Row, at: datetime) -> None:
        self._index.discard(row.key)
        row.modified_at = utc(at)
        self._index.add(row.key)

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
    return value.lower() if isinstance(value, str) else value
