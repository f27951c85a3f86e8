"""The scheduler: one run per connection at a time, early requests coalesce, cron weekdays as crontab means them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from closeloop.config.models import Connection, Schedule
from closeloop.daemon.scheduler import SyncScheduler, crontab_weekdays, effective_jitter, trigger_of


class NoSpread(random.Random):
    """Start times without spread, so the first run is due at once."""

    def uniform(self, a: float, b: float) -> float:
        return a


def connection(name: str, every: timedelta = timedelta(hours=1)) -> Connection:
    return Connection(name=name, systems=("a", "b"), mappings=(), schedule=Schedule(every=every))


class Runs:
    """A run function that blocks until released and records how many run at once."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.active = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.began = asyncio.Event()

    async def __call__(self, name: str) -> None:
        self.started.append(name)
        self.active += 1
        self.most_at_once = max(self.most_at_once, self.active)
        self.began.set()
        try:
            await self.release.wait()
        finally:
            self.active -= 1


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds (the scheduler fires on its own timer, not on an event we hold)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("0,6", "sun,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("5-7", "sun,fri,sat"),
    ],
)
def test_crontab_weekdays_start_on_sunday(field: str, expected: str) -> None:
    assert crontab_weekdays(field) == expected


def test_cron_trigger_fires_on_crontab_monday() -> None:
    trigger = trigger_of(Schedule(cron="0 9 * * 1", jitter=timedelta(seconds=0)))
    assert isinstance(trigger, CronTrigger)
    saturday = datetime(2026, 3, 7, 12, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, saturday)
    assert fire is not None
    assert fire.weekday() == 0  # Monday
    assert fire.hour == 9


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (Schedule(every=timedelta(seconds=60)), timedelta(seconds=6)),
        (Schedule(every=timedelta(hours=1)), timedelta(seconds=30)),
        (Schedule(every=timedelta(seconds=60), jitter=timedelta(seconds=2)), timedelta(seconds=2)),
        (Schedule(cron="*/5 * * * *"), timedelta(seconds=10)),
    ],
    ids=["tenth-of-interval", "capped", "configured", "cron-default"],
)
def test_jitter_spreads_connections(schedule: Schedule, expected: timedelta) -> None:
    assert effective_jitter(schedule) == expected


def test_interval_trigger_carries_the_jitter() -> None:
    trigger = trigger_of(Schedule(every=timedelta(seconds=60), jitter=timedelta(seconds=5)))
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.jitter == 5


async def test_early_requests_during_a_run_coalesce_into_one_more_run() -> None:
    runs = Runs()
    scheduler = SyncScheduler(runs, rng=NoSpread())
    scheduler.start([connection("c1")])
    try:
        await asyncio.wait_for(runs.began.wait(), 5)
        for reason in ("webhook", "webhook again", "http"):
            assert scheduler.request("c1", reason)
        runs.release.set()
        await until(lambda: len(runs.started) == 2)
        await asyncio.sleep(0.2)
        await scheduler.wait_idle()
        assert runs.started == ["c1", "c1"]
        assert runs.most_at_once == 1
    finally:
        scheduler.stop_scheduling()
        scheduler.shutdown()


async def test_early_request_when_idle_runs_now() -> None:
    runs = Runs()
    runs.release.set()
    scheduler = SyncScheduler(runs, rng=NoSpread())
    scheduler.start([connection("c1")])
    try:
        await until(lambda: len(runs.started) == 1)
        await scheduler.wait_idle()
        assert scheduler.request("c1", "webhook")
        await until(lambda: len(runs.started) == 2)
    finally:
        scheduler.stop_scheduling()
        scheduler.shutdown()


async def test_requests_for_unknown_connections_or_after_stop_are_refused() -> None:
    runs = Runs()
    runs.release.set()
    scheduler = SyncScheduler(runs, rng=NoSpread())
    scheduler.start([connection("c1")])
    assert not scheduler.request("nope", "http")
    scheduler.stop_scheduling()
    assert not scheduler.request("c1", "http")
    scheduler.shutdown()


async def test_hold_waits_for_the_running_sync_and_keeps_new_ones_out() -> None:
    runs = Runs()
    scheduler = SyncScheduler(runs, rng=NoSpread())
    scheduler.start([connection("c1"), connection("c2")])
    try:
        await until(lambda: len(runs.started) == 2)
        hold = asyncio.create_task(scheduler.hold())
        await asyncio.sleep(0.05)
        assert not hold.done()
        runs.release.set()
        await asyncio.wait_for(hold, 5)
        scheduler.request("c1", "http")
        await asyncio.sleep(0.2)
        assert len(runs.started) == 2  # held
        scheduler.release()
        await until(lambda: len(runs.started) == 3)
    finally:
        scheduler.stop_scheduling()
        scheduler.shutdown()


async def test_cancel_runs_interrupts_a_run_past_the_grace_period() -> None:
    runs = Runs()
    scheduler = SyncScheduler(runs, rng=NoSpread())
    scheduler.start([connection("c1")])
    await asyncio.wait_for(runs.began.wait(), 5)
    scheduler.stop_scheduling()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(scheduler.wait_idle(), 0.1)
    await scheduler.cancel_runs()
    await asyncio.wait_for(scheduler.wait_idle(), 1)
    assert runs.active == 0
    scheduler.shutdown()


async def test_rescheduling_drops_removed_connections() -> None:
    runs = Runs()
    runs.release.set()
    scheduler = SyncScheduler(runs, rng=NoSpread())
    scheduler.start([connection("c1"), connection("c2")])
    scheduler.schedule([connection("c2", every=timedelta(minutes=5))])
    assert scheduler.connections == ["c2"]
    assert not scheduler.request("c1", "http")
    scheduler.stop_scheduling()
    scheduler.shutdown()


async def test_a_steady_stream_of_early_requests_keeps_the_minimum_gap_between_runs() -> None:
    ended: list[float] = []
    started: list[float] = []
    loop = asyncio.get_running_loop()

    async def run(name: str) -> None:
        started.append(loop.time())
        await asyncio.sleep(0.02)
        ended.append(loop.time())

    gap = timedelta(seconds=0.3)
    scheduler = SyncScheduler(run, rng=NoSpread(), min_gap=gap)
    scheduler.start([connection("c1")])
    try:
        for _ in range(100):  # a webhook every 10 ms for one second
            scheduler.request("c1", "webhook")
            await asyncio.sleep(0.01)
        await until(lambda: len(ended) == len(started))
    finally:
        scheduler.stop_scheduling()
        scheduler.shutdown()
    assert 2 <= len(started) <= 5  # without a gap: one run after another, dozens in the second
    waits = [after - before for before, after in zip(ended, started[1:], strict=False)]
    assert min(waits) >= gap.total_seconds() * 0.9  # the loop's timer may fire a hair early


async def test_a_stop_cuts_the_gap_short() -> None:
    runs = Runs()
    scheduler = SyncScheduler(runs, rng=NoSpread(), min_gap=timedelta(hours=1))
    scheduler.start([connection("c1")])
    await asyncio.wait_for(runs.began.wait(), 5)
    scheduler.request("c1", "webhook")  # during the run: one more run follows it, an hour after it ends
    runs.release.set()
    await until(lambda: runs.active == 0)
    assert scheduler.in_progress == ["c1"]  # waiting out the gap
    scheduler.stop_scheduling()
    await until(lambda: scheduler.in_progress == [], seconds=1)
    assert runs.started == ["c1"]
    scheduler.shutdown()


async def test_an_interrupted_run_reaches_apscheduler_as_no_error(caplog: pytest.LogCaptureFixture) -> None:
    runs = Runs()
    scheduler = SyncScheduler(runs, rng=NoSpread())
    scheduler.start([connection("c1")])
    await asyncio.wait_for(runs.began.wait(), 5)
    scheduler.stop_scheduling()
    await scheduler.cancel_runs()
    await asyncio.sleep(0.05)  # APScheduler reports a job's end from a callback
    scheduler.shutdown()
    assert not [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelname == "ERROR"]
