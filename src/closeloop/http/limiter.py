"""Rate budget before each call: requests per window, concurrency, daily budget, shared pauses."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from closeloop.http.errors import BudgetExhausted
from closeloop.http.timing import Timing
from closeloop.model import Limits

DEFAULT_BUCKET = "default"
_EPSILON = 1e-9  # float slack, so a stamp exactly one window old counts as gone
_GUARD_SHARE, _GUARD_SECONDS = 0.02, 0.01
"""A start leaves the window only this much after the window's length: the vendor counts a call when it arrives,
later than our start, so a start exactly one window old may still sit in the vendor's window."""
_DAY = 86_400.0
_SLOT = 3_600.0  # the daily count is kept per hour: a rolling 24 h without a stamp per call


@dataclass(frozen=True)
class Usage:
    """What a vendor's response headers say about quota; a connector's header hook builds one."""

    daily_used: int | None = None
    daily_limit: int | None = None
    window_remaining: int | None = None
    window_resets_in: float | None = None


class Window:
    """At most ``requests`` starts in any ``seconds``-long window; callers wait their turn, in order."""

    def __init__(self, requests: int, seconds: float, timing: Timing) -> None:
        self.requests = requests
        self.seconds = seconds
        self._timing = timing
        self._starts: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._span = seconds * (1 + _GUARD_SHARE) + _GUARD_SECONDS

    async def acquire(self) -> None:
        """Wait until a start is allowed, then record it."""
        async with self._lock:  # one waiter at a time keeps the order fair and the log exact
            while True:
                now = self._timing.monotonic()
                while self._starts and self._starts[0] + self._span <= now + _EPSILON:
                    self._starts.popleft()
                wait = self._paused_until - now
                if wait <= 0 and len(self._starts) < self.requests:
                    self._starts.append(now)
                    return
                if wait <= 0:
                    wait = self._starts[0] + self._span - now
                await self._timing.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every caller of this window for ``seconds`` (a 429's Retry-After, a spent window)."""
        self._paused_until = max(self._paused_until, self._timing.monotonic() + seconds)


class DailyBudget:
    """Calls in the last 24 hours against a cap, keeping a share in reserve; vendor counts override ours."""

    def __init__(self, system: str, cap: int | None, reserve: float, timing: Timing) -> None:
        self.system = system
        self.cap = cap
        self.reserve = reserve
        self._timing = timing
        self._slots: deque[list[int]] = deque()  # [hour number, calls]
        self._vendor_limit: int | None = None
        self._vendor_used: int | None = None
        self._vendor_seen_at = -math.inf
        self._since_vendor = 0
        self._exhausted_until = -math.inf

    @property
    def limit(self) -> int | None:
        """The smaller of the admin cap and the vendor's reported limit."""
        known = [x for x in (self.cap, self._vendor_limit) if x is not None]
        return min(known) if known else None

    @property
    def usable(self) -> int | None:
        """Calls allowed before the reserve: ``limit * (1 - reserve)``."""
        limit = self.limit
        return None if limit is None else math.floor(limit * (1 - self.reserve))

    @property
    def used(self) -> int:
        """Calls in the last 24 hours: ours, or the vendor's count plus ours since, whichever is larger."""
        now = self._timing.monotonic()
        self._expire(now)
        ours = sum(count for _, count in self._slots)
        if self._vendor_used is not None and now - self._vendor_seen_at < _DAY:
            return max(ours, self._vendor_used + self._since_vendor)
        return ours

    def check(self) -> None:
        """Raise :class:`BudgetExhausted` if no call may be spent now."""
        now = self._timing.monotonic()
        if now < self._exhausted_until:
            raise BudgetExhausted(f"{self.system}: the vendor reported the daily API quota as spent")
        usable, used = self.usable, self.used
        if usable is not None and used >= usable:
            raise BudgetExhausted(
                f"{self.system}: daily API budget reached ({used} of {self.limit} calls, "
                f"{self.reserve:.0%} kept in reserve)"
            )

    def spend(self) -> None:
        """Check, then count one call."""
        self.check()
        hour = int(self._timing.monotonic() // _SLOT)
        if self._slots and self._slots[-1][0] == hour:
            self._slots[-1][1] += 1
        else:
            self._slots.append([hour, 1])
        self._since_vendor += 1

    def observe(self, used: int | None, limit: int | None) -> None:
        """Take the vendor's own count of calls used and its daily limit."""
        if limit is not None:
            self._vendor_limit = limit
        if used is not None:
            self._vendor_used = used
            self._vendor_seen_at = self._timing.monotonic()
            self._since_vendor = 0

    def exhaust(self, seconds: float = _SLOT) -> None:
        """Refuse calls for ``seconds`` because the vendor said the quota is spent."""
        self._exhausted_until = self._timing.monotonic() + seconds

    def _expire(self, now: float) -> None:
        oldest = int((now - _DAY) // _SLOT)
        while self._slots and self._slots[0][0] <= oldest:
            self._slots.popleft()


class RateLimiter:
    """Per system: a window per bucket (named ones also count in the default), concurrency, budget."""

    def __init__(
        self,
        system: str,
        windows: Mapping[str, tuple[int, float]],
        max_concurrency: int,
        budget: DailyBudget,
        timing: Timing,
    ) -> None:
        self.system = system
        self.budget = budget
        self._windows = {name: Window(n, seconds, timing) for name, (n, seconds) in windows.items()}
        self._concurrency = asyncio.Semaphore(max_concurrency)

    @classmethod
    def from_limits(
        cls,
        system: str,
        limits: Limits,
        timing: Timing,
        *,
        requests_per_window: int | None = None,
        window_seconds: float | None = None,
        max_concurrency: int | None = None,
        daily_budget: int | None = None,
        budget_reserve: float = 0.0,
    ) -> RateLimiter:
        """A limiter for ``limits`` with the admin's overrides applied."""
        windows = dict(limits.buckets)
        windows[DEFAULT_BUCKET] = (
            requests_per_window or limits.requests_per_window,
            window_seconds or limits.window_seconds,
        )
        budget = DailyBudget(system, daily_budget or limits.daily_budget, budget_reserve, timing)
        return cls(system, windows, max_concurrency or limits.max_concurrency, budget, timing)

    def window(self, bucket: str) -> Window:
        """The window of ``bucket`` (unknown names fall back to the default bucket)."""
        return self._windows.get(bucket, self._windows[DEFAULT_BUCKET])

    @asynccontextmanager
    async def slot(self, bucket: str = DEFAULT_BUCKET) -> AsyncIterator[None]:
        """Hold a place to send one call: budget checked, concurrency held, window paced, call counted."""
        self.budget.check()  # fail fast rather than wait for a window only to be refused
        async with self._concurrency:
            # Windows are taken after the semaphore so a recorded start is close to the real send time.
            if bucket != DEFAULT_BUCKET and bucket in self._windows:
                await self._windows[bucket].acquire()
            await self._windows[DEFAULT_BUCKET].acquire()
            self.budget.spend()
            yield

    def pause(self, bucket: str, seconds: float) -> None:
        """Hold every caller of ``bucket`` for ``seconds``."""
        self.window(bucket).pause(seconds)

    def observe(self, bucket: str, usage: Usage) -> None:
        """Feed vendor quota headers: daily counts into the budget, a spent window into a pause."""
        self.budget.observe(usage.daily_used, usage.daily_limit)
        if usage.window_remaining is not None and usage.window_remaining <= 0:
            resets_in = usage.window_resets_in
            self.pause(bucket, resets_in if resets_in is not None else self.window(bucket).seconds)
