"""The one SQLite connection (file creation with tight permissions, pragmas, transactions), value encoding, and
``Access``: what the table modules need from a back-end, so SQLite and PostgreSQL run the same table code."""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import orjson

from closeloop.jsoncodec import dump_json as dump_json  # the store's modules import it from here
from closeloop.jsoncodec import load_json as load_json
from closeloop.model import parse_utc, utc
from closeloop.store.rows import Fields

MEMORY = ":memory:"
"""The path that opens a throw-away in-memory store (no file, no WAL)."""

_FILE_MODE = 0o600
_DIR_MODE = 0o700


class StoreError(Exception):
    """The state store cannot be opened or used as it is."""


class StoreUnavailable(StoreError):
    """The state store's server cannot be reached (connection lost or refused); it may come back by itself."""


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


def connect(path: str | Path, *, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open ``path`` with the pragmas closeloop relies on."""
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
    return conn


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


class Row(Protocol):
    """A result row read by column name or position (``sqlite3.Row``, or PostgreSQL's ``postgres.PgRow``)."""

    def __getitem__(self, key: int | str, /) -> Any:
        """The value of one column."""
        ...


class DBCursor(Protocol):
    """What the table modules read back from a statement."""

    @property
    def rowcount(self) -> int:
        """Rows the statement changed."""
        ...

    @property
    def lastrowid(self) -> int | None:
        """The id a single-row INSERT took."""
        ...

    def fetchone(self) -> Any:
        """The next row, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        ...


class Connection(Protocol):
    """The slice of ``sqlite3.Connection`` the table modules call (PostgreSQL's ``postgres.PgConnection`` too)."""

    @property
    def total_changes(self) -> int:
        """Rows changed since the connection opened."""
        ...

    def execute(self, sql: str, parameters: Any = ..., /) -> DBCursor:
        """Run one statement (SQLite's dialect)."""
        ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> DBCursor:
        """Run one statement once per parameter row."""
        ...


class TransactionControl(Protocol):
    """How the table modules open transactions: ``Transactions`` on SQLite, ``PgTransactions`` on PostgreSQL."""

    def __call__(self) -> AbstractContextManager[None]:
        """A transaction, or a savepoint inside the one already open."""
        ...

    def joined(self) -> AbstractContextManager[None]:
        """The transaction already open (no savepoint), or one of its own when none is."""
        ...


class Access(Protocol):
    """What the table modules share: the connection, its lock, transactions and the clock."""

    @property
    def conn(self) -> Connection:
        """The back-end's connection."""
        ...

    @property
    def lock(self) -> threading.RLock:
        """Held by every call, and by a transaction for its whole block."""
        ...

    @property
    def transaction(self) -> TransactionControl:
        """Opens a transaction, or a savepoint inside one; ``joined()`` joins the one already open."""
        ...

    @property
    def clock(self) -> Callable[[], datetime]:
        """The injected clock."""
        ...

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Sequence[Row]:
        """Run a query under the lock and fetch every row."""
        ...

    def row(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Row | None:
        """Run a query under the lock and fetch its first row, if any."""
        ...

    def now(self) -> str:
        """The injected clock's current time, encoded for storage."""
        ...

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Insert ``rows`` (inside the caller's transaction) into a table keyed by ``id``; their ids, in order."""
        ...


class SQLiteAccess:
    """``Access`` on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], datetime], lock: threading.RLock) -> None:
        self.conn = conn
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

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Insert ``rows`` (inside the caller's transaction) into a table keyed by ``id``; their ids, in order."""
        table = sql.split("INTO", 1)[1].split("(", 1)[0].strip()
        with self.lock:
            self.conn.executemany(sql, rows)
            # The caller's transaction holds SQLite's write lock: the rows took consecutive ids after the largest
            # one, so they are the last ones.
            last = int(self.conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0])  # noqa: S608
        return list(range(last - len(rows) + 1, last + 1))


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


@lru_cache(maxsize=4096)
def from_ts(text: str) -> datetime:
    """Decode a stored timestamp.

    Cached, as :func:`ts` is: the rows of one page share their stamps (a link's ``linked_at``, a golden record's
    ``created_at`` and ``updated_at`` are the page's clock), so each is parsed once.
    """
    return parse_utc(text)


def from_ts_or_none(text: str | None) -> datetime | None:
    """Decode an optional stored timestamp."""
    return None if text is None else from_ts(text)


def dump_fields(fields: Fields) -> str:
    """Encode canonical fields as JSON, refusing anything but str, bool and None."""
    for name, value in fields.items():
        if value.__class__ not in _CANONICAL and not isinstance(value, str | bool):
            raise TypeError(f"field {name!r}: {type(value).__name__} is not a canonical value (str, bool or None)")
    return dump_json(fields)


_CANONICAL = frozenset({str, bool, type(None)})
"""The exact types of canonical values (subclasses of str and bool pass the slower check)."""


def id_list(ids: Sequence[str] | Sequence[int]) -> str:
    """Encode ids as one JSON array parameter, so a batch lookup is one query whatever its size."""
    return orjson.dumps(list(ids)).decode()
