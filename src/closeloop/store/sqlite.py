"""The SQLite state store: one connection owner offering every table through typed methods."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from closeloop.model import now_utc
from closeloop.store.activity_tables import ActivityTables
from closeloop.store.db import SQLiteAccess, connect, ts
from closeloop.store.delta import DeltaTables
from closeloop.store.loop_tables import LoopTables
from closeloop.store.migrations import MIGRATIONS, Migrations, migrate

if TYPE_CHECKING:
    from closeloop.store.api import StateStore

DEFAULT_BUSY_TIMEOUT_MS = 5_000


class Store(DeltaTables, LoopTables, ActivityTables):
    """The state store on one SQLite file; the only owner of its connection.

    Every method is safe to call from any thread: a lock serialises them, and ``transaction()`` holds it for
    the whole block, so another thread's calls wait for the commit instead of joining the transaction. Calls
    made by the same thread inside a transaction (coroutines included) join it.
    """

    _a: SQLiteAccess

    def __init__(self, access: SQLiteAccess, path: str) -> None:
        """Wrap an open connection; use ``Store.open`` rather than calling this."""
        self._a = access
        self.path = path
        self.schema_version = 0

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        clock: Callable[[], datetime] = now_utc,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        migrations: Migrations = MIGRATIONS,
        interrupt_running: bool = True,
    ) -> Store:
        """Open (creating it with mode 0600 if needed) and migrate the store at ``path``.

        ``interrupt_running`` marks runs left 'running' by a dead process as 'interrupted'; a second process
        that only reads (e.g. a CLI report next to a running daemon) passes False.
        """
        db = connect(path, busy_timeout_ms=busy_timeout_ms)
        store = cls(SQLiteAccess(db, clock, threading.RLock()), str(path))
        try:
            store.schema_version = migrate(db, migrations, transaction=store._a.transaction, now=ts(clock()))
            if interrupt_running and store.schema_version >= 1:
                store.interrupt_running_runs()
        except BaseException:
            db.close()
            raise
        return store

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside the block commits together or not at all; nested blocks join it."""
        with self._a.transaction():
            yield

    def integrity_check(self) -> str:
        """SQLite's integrity check plus a foreign-key check: 'ok', or the problems found, one a line."""
        problems = [str(row[0]) for row in self._a.rows("PRAGMA integrity_check")]
        if problems == ["ok"]:
            problems = []
        for row in self._a.rows("PRAGMA foreign_key_check"):
            problems.append(f"foreign key: {row[0]} row {row[1]} refers to a missing {row[2]}")
        return "\n".join(problems) or "ok"

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        with self._a.lock:
            self._a.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:

    def _conforms(store: Store) -> StateStore:
        """Let mypy prove that Store offers everything StateStore promises."""
        return store
