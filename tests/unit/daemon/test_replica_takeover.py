"""When a connection whose lease just came to this replica runs at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.config.models import Schedule
from closeloop.daemon.replicas import due_on_takeover

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
HOURLY = Schedule(every=timedelta(hours=1))
NIGHTLY = Schedule(cron="0 3 * * *")


@pytest.mark.parametrize(
    ("schedule", "last_started", "due"),
    [
        (HOURLY, None, True),
        (NIGHTLY, None, True),
        (None, None, True),
        (HOURLY, NOW - timedelta(minutes=61), True),
        (HOURLY, NOW - timedelta(minutes=10), False),
        (NIGHTLY, NOW - timedelta(days=2), False),
    ],
    ids=["never-ran", "never-ran-cron", "unknown-schedule", "interval-passed", "ran-recently", "cron-waits"],
)
def test_due_on_takeover(schedule: Schedule | None, last_started: datetime | None, due: bool) -> None:
    assert due_on_takeover(schedule, last_started, NOW) is due
