"""What the Account Engagement integration tests share: a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.testing.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 2026-06-01 09:00 UTC."""
    return FakeClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
