"""Scheduling: APScheduler fires each connection on its schedule; one run per connection at a time.

Early runs (webhooks, ``POST /connections/{name}/sync``) coalesce: however many arrive during a run, one more run
follows it, and never sooner than ``min_gap`` after the previous run ended, so a steady stream of webhooks cannot
keep a connection running back to back. Runs can be held (a config swap waits for the running ones and keeps new
ones from starting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from closeloop.config.models import Connection, Schedule
from closeloop.model import now_utc

log = logging.getLogger(__name__)

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
DEFAULT_CRON_JITTER = timedelta(seconds=10)
MAX_DEFAULT_JITTER = timedelta(seconds=30)


def effective_jitter(schedule: Schedule) -> timedelta:
    """The configured jitter, or a default so connections on the same schedule do not fire together."""
    if schedule.jitter > timedelta():
        return schedule.jitter
    if schedule.every is not None:
        return min(schedule.every / 10, MAX_DEFAULT_JITTER)
    return DEFAULT_CRON_JITTER


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) as APScheduler 3 names, since its numbers start on Monday."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = 0, 6
        else:
            low, _, high = base.partition("-")
            first = _weekday_number(low)
            last = _weekday_number(high) if high else (6 if step_text else first)
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday_number(text: str) -> int:
    return _WEEKDAYS.index(text[:3]) if text[:3] in _WEEKDAYS else int(text)


def trigger_of(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of a connection's schedule (UTC, with jitter)."""
    jitter = int(effective_jitter(schedule).total_seconds()) or None
    if schedule.every is not None:
        return IntervalTrigger(seconds=schedule.every.total_seconds(), jitter=jitter, timezone=UTC)
    assert schedule.cron is not None  # the config model holds exactly one of them
    minute, hour, day, month, weekday = schedule.cron.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone=UTC,
        jitter=jitter,
    )


class SyncScheduler:
    """Runs connections on their schedules and on request; never two runs of one connection at once."""

    def __init__(
        self,
        run: Callable[[str], Awaitable[None]],
        *,
        clock: Callable[[], datetime] = now_utc,
        rng: random.Random | None = None,
        min_gap: timedelta = timedelta(),
    ) -> None:
        self._run = run
        self._clock = clock
        self._min_gap = min_gap
        self._ended: dict[str, datetime] = {}
        self._rng = rng or random.Random()  # noqa: S311 - spreading start times, not cryptography
        # coalesce: runs missed while the machine slept become one; no misfire limit, so that one still runs.
        self._aps = AsyncIOScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._schedules: dict[str, Schedule] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()
        self._stopping = False
        self._stopped = asyncio.Event()

    @property
    def connections(self) -> list[str]:
        """The names of the scheduled connections."""
        return list(self._schedules)

    @property
    def in_progress(self) -> list[str]:
        """The connections with a job under way: running, or waiting out the gap before an early run."""
        return list(self._tasks)

    def start(self, connections: Iterable[Connection]) -> None:
        """Schedule ``connections`` and start firing."""
        self.schedule(connections)
        self._aps.start()

    def schedule(self, connections: Iterable[Connection]) -> None:
        """Make the jobs match ``connections``: new ones added, changed ones replaced, removed ones dropped."""
        wanted = {c.name: c.schedule for c in connections}
        for name in [n for n in self._schedules if n not in wanted]:
            self._aps.remove_job(_job_id(name))
            del self._schedules[name]
        for name, schedule in wanted.items():
            if self._schedules.get(name) == schedule:
                continue
            first = None
            if schedule.every is not None:
                # Interval connections sync at start, spread over the jitter; cron ones wait for their time.
                spread = self._rng.uniform(0, effective_jitter(schedule).total_seconds())
                first = self._clock() + timedelta(seconds=spread)
            kwargs = {"next_run_time": first} if first is not None else {}
            self._aps.add_job(
                self._job, trigger_of(schedule), args=[name], id=_job_id(name), replace_existing=True, **kwargs
            )
            self._schedules[name] = schedule

    def request(self, name: str, reason: str) -> bool:
        """Ask for an early run of ``name``; False when it is not scheduled or the daemon is stopping."""
        if self._stopping or name not in self._schedules:
            return False
        log.info("early run of %s requested (%s)", name, reason, extra={"connection": name})
        if name in self._tasks:
            self._again.add(name)  # the job in progress runs once more: requests coalesce into that run
        else:
            self._aps.modify_job(_job_id(name), next_run_time=max(self._clock(), self._earliest(name)))
        return True

    def _earliest(self, name: str) -> datetime:
        """When an early run of ``name`` may start: ``min_gap`` after its last run ended."""
        ended = self._ended.get(name)
        return ended + self._min_gap if ended is not None else self._clock()

    async def _gap(self, name: str) -> None:
        """Wait out the minimum gap before an early run follows the one that just ended (a stop cuts it short)."""
        wait = (self._earliest(name) - self._clock()).total_seconds()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), wait)

    async def _job(self, name: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks[name] = task
        try:
            while True:
                await self._open.wait()
                if self._stopping:
                    return
                self._again.discard(name)  # this run serves every request made so far
                self._running.add(name)
                self._idle.clear()
                try:
                    await self._run(name)
                except asyncio.CancelledError:
                    return  # a stop interrupted the run, which recorded it; nothing for APScheduler to report
                finally:
                    self._ended[name] = self._clock()
                    self._running.discard(name)
                    if not self._running:
                        self._idle.set()
                if self._stopping or name not in self._again:
                    return
                await self._gap(name)
        finally:
            del self._tasks[name]

    async def hold(self) -> None:
        """Keep new runs from starting and wait for the running ones to finish."""
        self._open.clear()
        await self._idle.wait()

    def release(self) -> None:
        """Let runs start again."""
        self._open.set()

    def stop_scheduling(self) -> None:
        """Fire nothing more; runs already started go on."""
        self._stopping = True
        self._stopped.set()
        self._aps.pause()
        self._open.set()  # jobs waiting at the gate see _stopping and end

    async def wait_idle(self) -> None:
        """Return once no run is in progress."""
        await self._idle.wait()

    async def cancel_runs(self, unwind_seconds: float = 5.0) -> None:
        """Interrupt the runs in progress (their open transactions roll back) and wait for them to unwind."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=unwind_seconds)

    def shutdown(self) -> None:
        """Stop APScheduler."""
        if self._aps.running:
            self._aps.shutdown(wait=False)


def _job_id(name: str) -> str:
    return f"sync:{name}"
