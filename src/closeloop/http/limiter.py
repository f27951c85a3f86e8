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
_EPSILON = 1e-9  # float slack, so a place freeing exactly now counts as free
_GUARD_SHARE, _GUARD_SECONDS = 0.02, 0.01
"""How long after we send a call the vendor is assumed to have it, at the latest, while its answer is not back."""
_DAY = 86_400.0
_SLOT = 3_600.0  # the daily count is kept per hour: a rolling 24 h without a stamp per call


@dataclass(frozen=True)
class Usage:
    """What a vendor's response headers say about quota; a connector's header hook builds one."""

    daily_used: int | None = None
    daily_limit: int | None = None
    window_remaining: int | None = None
    window_resets_in: float | None = None
    window_limit: int | None = None
    """The vendor's requests per window, when its headers say (else the limiter assumes its own)."""


@dataclass(frozen=True)
class Ticket:
    """One place granted in a window: the how-many-th grant it was, and the places in use with it."""

    serial: int
    in_use: int


class Window:
    """At most ``requests`` calls in any ``seconds``, counted as the vendor counts them: when they arrive.

    A call holds its place from the moment it is sent until one window after the vendor counted it. That moment
    is not visible, only bounded: the vendor had the call before its answer came back, and (assumed) no later
    than the guard (2% of the window + 10 ms) after it was sent. So the place frees one window after the answer,
    or one window plus the guard after the send if the answer is slower than that, whichever comes first. A
    window left unused lets a full window's burst go at once, as the vendor's own sliding window does.
    """

    def __init__(self, requests: int, seconds: float, timing: Timing) -> None:
        self.requests = requests
        self.seconds = seconds
        self.guard = seconds * _GUARD_SHARE + _GUARD_SECONDS
        self.lock = asyncio.Lock()
        """Held by the one caller waiting for a place, so callers are served in order."""
        self._timing = timing
        self._frees: dict[int, float] = {}  # grant serial -> when its place frees (a bound while in flight)
        self._in_flight: set[int] = set()
        self._serial = 0
        self._paused_until = 0.0
        self._answered = asyncio.Event()

    async def acquire(self) -> Ticket:
        """Wait until a place is free, then take it (a caller of several windows uses :meth:`take`)."""
        async with self.lock:  # one waiter at a time keeps the order fair
            await self.until_free()
            return self.take()

    async def until_free(self) -> None:
        """Return once a place is free; hold :attr:`lock` so that it stays free until :meth:`take`."""
        while True:
            now = self._timing.monotonic()
            wait = self._paused_until - now
            if wait <= 0:
                self._expire(now)
                if len(self._frees) < self.requests:
                    return
                first = min(self._frees, key=self._frees.__getitem__)
                wait = self._frees[first] - now
                if first in self._in_flight:  # its answer may free it earlier than the guard's bound
                    await self._sleep_or_answer(wait)
                    continue
            await self._timing.sleep(wait)

    def free_now(self) -> bool:
        """Whether a place is free at this moment."""
        now = self._timing.monotonic()
        self._expire(now)
        return self._paused_until <= now and len(self._frees) < self.requests

    def take(self) -> Ticket:
        """Take a place for a call sent now (after :meth:`until_free`, under :attr:`lock`)."""
        self._serial += 1
        self._frees[self._serial] = self._timing.monotonic() + self.seconds + self.guard
        self._in_flight.add(self._serial)
        return Ticket(self._serial, len(self._frees))

    def answered(self, ticket: Ticket, *, reached: bool = True) -> None:
        """The call of ``ticket`` ended: with an answer (the vendor had it by now), or without one (it may
        still reach the vendor: its place is held at least one window from now)."""
        self._in_flight.discard(ticket.serial)
        frees = self._frees.get(ticket.serial)
        if frees is None:
            return
        later = self._timing.monotonic() + self.seconds
        if not reached:
            self._frees[ticket.serial] = max(frees, later)
        elif later < frees:
            self._frees[ticket.serial] = later
            self._answered.set()

    def withdraw(self, ticket: Ticket) -> None:
        """Give back the place of a call that was never sent."""
        self._in_flight.discard(ticket.serial)
        if self._frees.pop(ticket.serial, None) is not None:
            self._answered.set()

    def accounts_for(self, ticket: Ticket, remaining: int, limit: int | None = None) -> bool:
        """Whether our own calls explain the vendor's count of ``limit - remaining`` when it answered
        ``ticket``'s call: those in use when it was sent, and any sent after it (they may have arrived first)."""
        vendor_count = (limit if limit is not None else self.requests) - remaining
        return vendor_count <= ticket.in_use + (self._serial - ticket.serial)

    def pause(self, seconds: float) -> None:
        """Hold every caller of this window for ``seconds`` (a 429's Retry-After, a spent window)."""
        self._paused_until = max(self._paused_until, self._timing.monotonic() + seconds)

    def _expire(self, now: float) -> None:
        for serial in [s for s, frees in self._frees.items() if frees <= now + _EPSILON]:
            del self._frees[serial]

    async def _sleep_or_answer(self, seconds: float) -> None:
        """Sleep ``seconds`` or until a call in flight is answered, whichever is first."""
        self._answered.clear()
        sleeping = asyncio.ensure_future(self._timing.sleep(seconds))
        answered = asyncio.ensure_future(self._answered.wait())
        try:
            await asyncio.wait((sleeping, answered), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, answered):
                task.cancel()
            await asyncio.gather(sleeping, answered, return_exceptions=True)


@dataclass(frozen=True)
class Slot:
    """The places one call holds: one per window it spends."""

    tickets: Mapping[Window, Ticket]


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
    async def slot(self, bucket: str = DEFAULT_BUCKET) -> AsyncIterator[Slot]:
        """Hold a place to send one call: budget checked, concurrency held, windows paced, call counted.

        Leave the block when the answer is in (or the call failed): the windows count the call until one window
        after that (see :class:`Window`).
        """
        self.budget.check()  # fail fast rather than wait for a window only to be refused
        async with self._concurrency:
            windows = self._spent_by(bucket)
            tickets = await self._take(windows)
            try:
                self.budget.spend()
            except BaseException:
                for window, ticket in zip(windows, tickets, strict=True):
                    window.withdraw(ticket)
                raise
            reached = False
            try:
                yield Slot(dict(zip(windows, tickets, strict=True)))
                reached = True
            finally:
                for window, ticket in zip(windows, tickets, strict=True):
                    window.answered(ticket, reached=reached)

    def _spent_by(self, bucket: str) -> list[Window]:
        """The windows a call of ``bucket`` spends: its own (if it has one), then the default."""
        default = self._windows[DEFAULT_BUCKET]
        own = self._windows.get(bucket) if bucket != DEFAULT_BUCKET else None
        return [default] if own is None else [own, default]

    @staticmethod
    async def _take(windows: list[Window]) -> list[Ticket]:
        """Places in every window at one instant, the moment the call goes out, so none is counted early."""
        if len(windows) == 1:
            return [await windows[0].acquire()]
        own, default = windows
        async with own.lock:  # queue for the named bucket first, then with everyone for the default
            while True:
                await own.until_free()
                async with default.lock:
                    await default.until_free()
                    if own.free_now():  # nobody else takes places in ``own`` meanwhile; only a pause can intervene
                        return [own.take(), default.take()]

    def pause(self, bucket: str, seconds: float) -> None:
        """Hold every caller of ``bucket`` for ``seconds``."""
        self.window(bucket).pause(seconds)

    def observe(self, bucket: str, usage: Usage, slot: Slot | None = None) -> None:
        """Feed vendor quota headers: daily counts into the budget, a spent window into a pause.

        A window the vendor reports spent pauses the bucket only if our own calls do not explain it (other
        clients of the same account, or a vendor limit below ours): when they do, our window already holds the
        next call back exactly as long as needed. Without the ``slot`` of the answered call, it always pauses.
        """
        self.budget.observe(usage.daily_used, usage.daily_limit)
        if usage.window_remaining is None or usage.window_remaining > 0:
            return
        window = self.window(bucket)
        ticket = slot.tickets.get(window) if slot is not None else None
        if ticket is not None and window.accounts_for(ticket, usage.window_remaining, usage.window_limit):
            return
        resets_in = usage.window_resets_in
        self.pause(bucket, resets_in if resets_in is not None else window.seconds)
