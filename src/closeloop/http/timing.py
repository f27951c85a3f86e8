"""The clocks and the sleep the HTTP layer uses, injectable so tests run on fake time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from closeloop.model import now_utc


@dataclass(frozen=True)
class Timing:
    """Wall clock (HTTP dates, token expiry), monotonic clock (pacing, backoff) and sleep."""

    now: Callable[[], datetime] = now_utc
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class FakeClock:
    """Fake time for tests: ``sleep`` returns at once and moves the clock forward (sleeps add up)."""

    start: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    elapsed: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        """Seconds of fake time since the start."""
        return self.elapsed

    def now(self) -> datetime:
        """The fake wall-clock time."""
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> None:
        """Move fake time forward."""
        self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, jump the clock, and yield to other tasks once."""
        self.sleeps.append(seconds)
        self.elapsed += max(seconds, 0.0)
        await asyncio.sleep(0)

    def timing(self) -> Timing:
        """This fake as a :class:`Timing`."""
        return Timing(now=self.now, monotonic=self.monotonic, sleep=self.sleep)
