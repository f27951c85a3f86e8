"""What one sync cycle of one connection shares: the store, the connectors, schemas, counts, the clock."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from closeloop.config.models import Connection, EntityMapping, LoopConfig
from closeloop.connector import Connector
from closeloop.model import ObjectSchema
from closeloop.store.api import StateStore

if TYPE_CHECKING:
    from closeloop.engine.owners import Directory


class IdSet:
    """A set of ids kept in a private temporary SQLite database rather than in Python objects.

    A cycle may touch any number of records (an initial sync of millions): remembering them costs a temporary
    file and SQLite's small page cache, not memory that grows with them. Ids added go through a buffer of at most
    ``BUFFER`` ids. Iteration is in sorted order, ``BUFFER`` rows at a time.
    """

    BUFFER = 1000

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._buffer: set[str] = set()
        self._stored = 0

    def add(self, item: str) -> None:
        """Remember one id."""
        self._buffer.add(item)
        if len(self._buffer) >= self.BUFFER:
            self._flush()

    def update(self, items: Iterable[str]) -> None:
        """Remember many ids."""
        for item in items:
            self.add(item)

    def __contains__(self, item: object) -> bool:
        if item in self._buffer:
            return True
        if self._db is None or not isinstance(item, str):
            return False
        return self._db.execute("SELECT 1 FROM ids WHERE id = ?", (item,)).fetchone() is not None

    def __len__(self) -> int:
        self._flush()
        return self._stored

    def __iter__(self) -> Iterator[str]:
        """The ids in sorted order, read a batch at a time; ids added meanwhile come too when they sort after the
        batch being handed out."""
        self._flush()
        after, last = ">=", ""  # every text is >= "": the first batch starts at the smallest id
        while self._db is not None:
            query = f"SELECT id FROM ids WHERE id {after} ? ORDER BY id LIMIT ?"  # noqa: S608 - a fixed operator
            rows = self._db.execute(query, (last, self.BUFFER)).fetchall()
            if not rows:
                return
            for (item,) in rows:
                yield item
            after, last = ">", rows[-1][0]
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._db is None:
            self._db = sqlite3.connect("")  # "": a temporary file, deleted when the connection closes
            self._db.execute("PRAGMA journal_mode = OFF")
            self._db.execute("PRAGMA synchronous = OFF")
            self._db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
        with self._db:
            added = self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", [(i,) for i in self._buffer])
        self._stored += added.rowcount
        self._buffer.clear()

    def close(self) -> None:
        """Forget everything and delete the temporary file."""
        self._buffer.clear()
        self._stored = 0
        if self._db is not None:
            self._db.close()
            self._db = None


@dataclass
class CycleContext:
    """The state one cycle of one connection works with."""

    store: StateStore
    connection: Connection
    connectors: dict[str, Connector]
    loop: LoopConfig
    clock: Callable[[], datetime]
    schemas: dict[tuple[str, str], ObjectSchema] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    won_stages: frozenset[str] = frozenset()
    """Canonical deal stage values that mean closed-won."""
    dry_run: bool = False
    on_count: Callable[[str, int], None] | None = None
    """Observer of every counter change (progress bars, metrics)."""
    deals: IdSet = field(default_factory=IdSet)
    """Golden deals touched or written this cycle: their associations are checked after the drain. Kept on disk:
    an initial sync touches every deal."""
    owners: dict[str, Directory] = field(default_factory=dict)
    """system -> its user directory, for the systems that map an owner field (the engine's: kept across cycles)."""
    owners_read: set[str] = field(default_factory=set)
    """The systems whose directory this cycle read (at most once each)."""

    @property
    def name(self) -> str:
        """The connection's name."""
        return self.connection.name

    def schema(self, system: str, obj: str) -> ObjectSchema | None:
        """The described schema of a native object, when it has been described this cycle."""
        return self.schemas.get((system, obj))

    def count(self, what: str, system: str | None = None, n: int = 1) -> None:
        """Add to a run counter (``created``, ``updated``, ``quarantined``... optionally per system)."""
        self.counts[what] += n
        if self.on_count is not None:
            self.on_count(what, n)
        if system:
            self.counts[f"{what}:{system}"] += n

    def close(self) -> None:
        """Release what the cycle kept aside (the temporary file of touched deals)."""
        self.deals.close()

    def mapping_of(self, system: str, obj: str) -> EntityMapping | None:
        """The entity mapping that includes ``obj`` of ``system``."""
        return next((m for m in self.connection.mappings if obj in m.objects(system)), None)
