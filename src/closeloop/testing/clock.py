"""The one fake clock of closeloop's tests: it moves only when a test moves it, sleeps, or reads it with a tick."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from closeloop.http.timing import Timing

START = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@dataclass
class FakeClock:
    """Fake time for every layer: call it for the time (the engine's, a store's, a sandbox's clock), ``timing()``
    for the HTTP layer's wall clock, monotonic clock and sleep.

    ``tick`` moves the clock forward on every call, so each write a fake vendor stamps gets a later time.
    ``sleep`` returns at once, records the wait and moves the clock by it, so back-offs add up without waiting.
    """

    now: datetime = START
    tick: timedelta = timedelta(0)
    elapsed: float = 0.0
    """Seconds the clock was moved since it was made (the monotonic clock), kept exact as a float."""
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        """The time, after one tick."""
        self.now += self.tick
        return self.now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move the clock forward (``advance(30)``, ``advance(hours=2)``); the new time."""
        step = timedelta(seconds=seconds, **delta)
        self.now += step
        self.elapsed += seconds if not delta else step.total_seconds()
        return self.now

    def monotonic(self) -> float:
        """Seconds of fake time since the clock was made."""
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, jump the clock, and yield to other tasks once."""
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)

    def timing(self) -> Timing:
        """This clock as the HTTP layer's :class:`Timing`."""
        return Timing(now=self, monotonic=self.monotonic, sleep=self.sleep)
