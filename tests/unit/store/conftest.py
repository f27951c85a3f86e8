"""Fixtures for the state-store tests: a controllable clock and a fresh store of each back-end.

Every test taking ``store`` (or ``backend``) runs twice: on a SQLite file and on a fresh PostgreSQL schema. The
PostgreSQL run skips, saying why, when no server answers and CLOSELOOP_TEST_POSTGRES is unset (see tests/conftest.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from closeloop.store.opening import AnyStore, open_state_store
from closeloop.store.postgres import PostgresStore
from closeloop.testing.clock import FakeClock

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)
"""What a broken rule (foreign key, append-only ledger) raises, on either back-end."""


@dataclass(frozen=True)
class Backend:
    """Where a test's store lives, with what a test needs to look at it from outside."""

    name: str
    location: str | Path

    def open(self, **options: Any) -> AnyStore:
        """Another store on the same data (as a second process would open it)."""
        return open_state_store(self.location, **options)

    def count(self, table: str) -> int:
        """Rows of ``table`` as a separate connection sees them: only what was committed."""
        sql = f"SELECT count(*) FROM {table}"  # noqa: S608 fixed names
        if self.name == "postgres":
            with psycopg.connect(str(self.location), autocommit=True) as conn:
                found = conn.execute(sql).fetchone()
                assert found is not None
                return int(found[0])
        raw = sqlite3.connect(self.location)
        try:
            return int(raw.execute(sql).fetchone()[0])
        finally:
            raw.close()

    def trace(self, store: AnyStore) -> list[str]:
        """A list that collects every statement ``store`` runs from now on."""
        statements: list[str] = []
        if isinstance(store, PostgresStore):
            store._a.conn.trace = statements.append
        else:
            store._a.conn.set_trace_callback(statements.append)
        return statements


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "closeloop.db"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, db_path: Path) -> Backend:
    if request.param == "postgres":
        return Backend("postgres", request.getfixturevalue("postgres_url"))
    return Backend("sqlite", db_path)


@pytest.fixture
def store(backend: Backend, clock: FakeClock) -> Iterator[AnyStore]:
    opened = backend.open(clock=clock)
    yield opened
    opened.close()
