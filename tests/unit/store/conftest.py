"""Fixtures for the state-store tests: a controllable clock and a fresh store on disk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from closeloop.store import Store
from closeloop.testing.clock import FakeClock

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "closeloop.db"


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    opened = Store.open(db_path, clock=clock)
    yield opened
    opened.close()
