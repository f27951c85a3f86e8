"""Open (or migrate) the state store a location names: a PostgreSQL URL, or else a SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from closeloop.model import now_utc
from closeloop.state_url import is_postgres_url
from closeloop.store.db import MEMORY, StoreError
from closeloop.store.migrations import MIGRATIONS, Applied, Migrations, current_version
from closeloop.store.sqlite import Store

if TYPE_CHECKING:
    from closeloop.store.postgres import PostgresStore

AnyStore: TypeAlias = "Store | PostgresStore"
"""Either back-end; both offer every method of ``StateStore`` through the same table code."""


def open_state_store(
    target: str | Path,
    *,
    clock: Callable[[], datetime] = now_utc,
    migrations: Migrations = MIGRATIONS,
    interrupt_running: bool = True,
    create: bool = True,
) -> AnyStore:
    """Open (and migrate) the store at ``target``: ``postgresql://...`` or ``postgres://...``, else a SQLite path.

    ``create=False`` refuses to make a store where none is (a SQLite file that does not exist, an empty schema).
    """
    if is_postgres_url(target):
        # Imported here: psycopg costs a SQLite user a quarter of a second at every command's start.
        from closeloop.store.postgres import PostgresStore

        return PostgresStore.open(
            str(target), clock=clock, migrations=migrations, interrupt_running=interrupt_running, create=create
        )
    if not create and str(target) != MEMORY and not Path(target).exists():
        raise StoreError(
            f"no state store at {target}: no sync has run with this configuration yet, "
            "or state.path / CLOSELOOP_STATE_DIR points elsewhere"
        )
    return Store.open(target, clock=clock, migrations=migrations, interrupt_running=interrupt_running)


def migrate_store(target: str | Path, *, migrations: Migrations = MIGRATIONS) -> Applied:
    """Bring the store at ``target`` to the latest schema (creating it if need be); say what was done.

    Runs left 'running' are left alone: a daemon may be running them.
    """
    if is_postgres_url(target):
        from closeloop.store.postgres import PostgresStore

        with PostgresStore.open(str(target), migrations=migrations, interrupt_running=False) as pg:
            assert pg.applied is not None  # set by open
            return pg.applied
    path = Path(target)
    before = _sqlite_version(path)
    with Store.open(path, migrations=migrations, interrupt_running=False) as store:
        after = store.schema_version
    steps = tuple((m.version, m.name) for m in migrations.steps if before < m.version <= after)
    return Applied(before, after, steps)


def _sqlite_version(path: Path) -> int:
    """The schema version of the SQLite file at ``path`` (0 when there is none yet), read without changing it."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return current_version(db)
    finally:
        db.close()
