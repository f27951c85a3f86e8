"""Open the state store a location names: a PostgreSQL URL, or else a SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from closeloop.model import now_utc
from closeloop.store.migrations import MIGRATIONS, Migrations
from closeloop.store.postgres import PostgresStore
from closeloop.store.sqlite import Store
from closeloop.store.url import is_postgres_url

AnyStore = Store | PostgresStore
"""Either back-end; both offer every method of ``StateStore`` through the same table code."""


def open_state_store(
    target: str | Path,
    *,
    clock: Callable[[], datetime] = now_utc,
    migrations: Migrations = MIGRATIONS,
    interrupt_running: bool = True,
) -> AnyStore:
    """Open (and migrate) the store at ``target``: ``postgresql://...`` or ``postgres://...``, else a SQLite path."""
    if is_postgres_url(target):
        return PostgresStore.open(str(target), clock=clock, migrations=migrations, interrupt_running=interrupt_running)
    return Store.open(target, clock=clock, migrations=migrations, interrupt_running=interrupt_running)
