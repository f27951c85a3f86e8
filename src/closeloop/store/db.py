"""The one SQLite connection: file creation with tight permissions, pragmas, transactions, value encoding."""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from closeloop.model import JSONValue, parse_utc, utc
from closeloop.store.rows import Fields

MEMORY = ":memory:"
"""The path that opens a throw-away in-memory store (no file, no WAL)."""

_FILE_MODE = 0o600
_DIR_MODE = 0o700


class StoreError(Exception):
    """The state store cannot be opened or used as it is."""


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists, so no other user can ever read it."""
    try:
        # O_EXCL: an existing file is left alone; sqlite then opens it as it is.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def prepare_file(path: Path) -> None:
    """Create the database file (and its directory) privately before sqlite gets to create them."""
    path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    _create_private(path)
    # sqlite gives -wal and -shm the database file's mode when it creates them; creating them here as well
    # covers a database file whose mode was loosened by hand after it was created.
    for suffix in ("-wal", "-shm"):
        _create_private(path.with_name(path.name + suffix))


def connect(path: str | Path, *, busy_timeout_ms: int) -> sqlite_utils.Database:
    """Open ``path`` with the pragmas closeloop relies on and wrap it in a sqlite-utils Database."""
    target = str(path)
    if target != MEMORY:
        prepare_file(Path(target))
    # isolation_level=None: no implicit BEGINs from the driver; Transactions issues every BEGIN itself.
    # check_same_thread=False: the Store's lock, not the driver, keeps threads from interleaving.
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if target != MEMORY and str(mode).lower() != "wal":
            raise StoreError(f"{target}: could not switch the journal to WAL (got {mode!r})")
        # NORMAL in WAL mode may lose the last commits on power loss, never consistency; writes are
        # idempotent upserts and the cursor rolls back with the data, so a lost commit is simply redone.
        conn.execute("PRAGMA synchronous = NORMAL")
        # A 64 MiB page cache (the default is 2 MiB) keeps the indexes a large sync walks in memory.
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn, execute_plugins=False)


class Transactions:
    """Owns BEGIN/COMMIT on one connection: the outer block is a transaction, inner blocks are savepoints."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock
        self._names = itertools.count(1)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        """Run the block atomically; an exception undoes everything the block wrote, then propagates."""
        with self._lock:
            if self._conn.in_transaction:
                yield from self._savepoint()
            else:
                yield from self._outer()

    @contextmanager
    def joined(self) -> Iterator[None]:
        """Run the block in the transaction already open (no savepoint), or in a transaction of its own.

        For the store's own methods: inside a caller's transaction an exception reaches the caller, whose block
        rolls back as a whole, so a savepoint per method (two statements each) would buy nothing.
        """
        with self._lock:
            if self._conn.in_transaction:
                yield
            else:
                yield from self._outer()

    def _outer(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so a reader in another process can never make this
        # transaction fail half-way with SQLITE_BUSY when it first writes; busy_timeout covers the wait.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _savepoint(self) -> Iterator[None]:
        name = f"closeloop_{next(self._names)}"
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            # Some errors (e.g. a RAISE(ROLLBACK) trigger) end the whole transaction; then there is no
            # savepoint left to roll back to and the original exception is what matters.
            if self._conn.in_transaction:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
            raise
        self._conn.execute(f"RELEASE {name}")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


class Access:
    """What the table modules share: the connection, its lock, transactions and the clock."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], datetime], lock: threading.RLock) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.lock = lock
        self.transaction = Transactions(self.conn, lock)
        self.clock = clock

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a query under the lock and fetch every row."""
        with self.lock:
            cursor = self.conn.cursor()
            cursor.row_factory = sqlite3.Row
            return cursor.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Row | None:
        """Run a query under the lock and fetch its first row, if any."""
        found = self.rows(sql, params)
        return found[0] if found else None

    def now(self) -> str:
        """The injected clock's current time, encoded for storage."""
        return ts(self.clock())


@lru_cache(maxsize=16_384)
def ts(moment: datetime) -> str:
    """Encode an aware datetime as fixed-width RFC 3339 UTC text, so text order is time order.

    Cached: a record's modified time is stored on its link at read and again when its write settles, and the
    clock's current time is stamped on every row of a page; each is formatted once.
    """
    # Microseconds (not model.iso_utc's milliseconds): a vendor's modified time must survive the round trip
    # exactly, or de-duplication by last-seen modified time would see every record as changed.
    return utc(moment).isoformat(timespec="microseconds").replace("+00:00", "Z")


def ts_or_none(moment: datetime | None) -> str | None:
    """Encode an optional datetime."""
    return None if moment is None else ts(moment)


def from_ts(text: str) -> datetime:
    """Decode a stored timestamp."""
    return parse_utc(text)


def from_ts_or_none(text: str | None) -> datetime | None:
    """Decode an optional stored timestamp."""
    return None if text is None else parse_utc(text)


def dump_fields(fields: Fields) -> str:
    """Encode canonical fields as JSON, refusing anything but str, bool and None."""
    for name, value in fields.items():
        if value.__class__ not in _CANONICAL and not isinstance(value, str | bool):
            raise TypeError(f"field {name!r}: {type(value).__name__} is not a canonical value (str, bool or None)")
    return dump_json(fields)


_CANONICAL = frozenset({str, bool, type(None)})
"""The exact types of canonical values (subclasses of str and bool pass the slower check)."""


def dump_json(value: JSONValue) -> str:
    """Encode a JSON value compactly and deterministically (keys sorted, UTF-8 as is)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def load_json(text: str | None) -> Any:
    """Decode a JSON column (NULL reads as an empty object)."""
    return {} if text is None else orjson.loads(text)


def id_list(ids: Sequence[str] | Sequence[int]) -> str:
    """Encode ids as one JSON array parameter, so a batch lookup is one query whatever its size."""
    return orjson.dumps(list(ids)).decode()
