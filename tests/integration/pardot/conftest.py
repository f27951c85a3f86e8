"""What the Account Engagement integration tests share: a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


class Clock:
    """The sandboxes' (and the engine's) clock, moved only by the test."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def tick(self, seconds: float = 1) -> datetime:
        """Move on ``seconds``; the new time."""
        self.moment += timedelta(seconds=seconds)
        return self.moment


@pytest.fixture
def clock() -> Clock:
    """A clock at 2026-06-01 09:00 UTC."""
    return Clock()
