"""The rate budget on fake time: pacing, concurrency, daily budget with reserve, shared pauses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from closeloop.connector import ConnectorContext, SystemSettings
from closeloop.http import (
    BudgetExhausted,
    DailyBudget,
    FakeClock,
    HttpClient,
    RateLimiter,
    RetryPolicy,
    TransientError,
    Usage,
    Window,
    build_http,
)
from closeloop.model import Limits

MakeClient = Callable[..., HttpClient]


def limits(**overrides: Any) -> Limits:
    values: dict[str, Any] = {"max_write_batch": 100, "max_read_batch": 100, "page_size": 100}
    values |= {"requests_per_window": 100, "window_seconds": 10.0, "max_concurrency": 1000}
    return Limits(**(values | overrides))


def most_in_any_window(starts: list[float], seconds: float) -> int:
    return max(sum(1 for t in starts if s <= t < s + seconds - 1e-6) for s in starts)


async def test_requests_are_paced_to_the_limit_not_burst(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(), clock.timing())
    starts: list[float] = []

    async def call() -> None:
        async with limiter.slot():
            starts.append(clock.monotonic())

    await asyncio.gather(*(call() for _ in range(250)))
    assert len(starts) == 250
    assert clock.monotonic() >= 20
    assert most_in_any_window(starts, 10) == 100


async def test_named_bucket_has_its_own_pace(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(buckets={"search": (4, 1.0)}), clock.timing())
    searches: list[float] = []
    for _ in range(12):
        async with limiter.slot("search"):
            searches.append(clock.monotonic())
    assert most_in_any_window(searches, 1.0) == 4
    assert clock.monotonic() >= 2


async def test_named_bucket_calls_also_count_in_the_default_bucket(clock: FakeClock) -> None:
    system = limits(requests_per_window=10, window_seconds=100.0, buckets={"search": (1000, 1.0)})
    limiter = RateLimiter.from_limits("crm", system, clock.timing())
    for _ in range(11):
        async with limiter.slot("search"):
            pass
    assert clock.monotonic() >= 100


async def test_concurrency_is_capped(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(max_concurrency=3), clock.timing())
    running = 0
    peak = 0

    async def call() -> None:
        nonlocal running, peak
        async with limiter.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(call() for _ in range(20)))
    assert peak == 3


@pytest.mark.parametrize(
    ("cap", "reserve", "allowed"),
    [
        pytest.param(100, 0.1, 90, id="ten-percent-reserve"),
        pytest.param(100, 0.0, 100, id="no-reserve"),
        pytest.param(10, 0.25, 7, id="reserve-rounds-down"),
    ],
)
def test_daily_budget_keeps_its_reserve(clock: FakeClock, cap: int, reserve: float, allowed: int) -> None:
    budget = DailyBudget("crm", cap, reserve, clock.timing())
    for _ in range(allowed):
        budget.spend()
    with pytest.raises(BudgetExhausted, match=f"{allowed} of {cap}"):
        budget.spend()


def test_daily_budget_recovers_after_a_day(clock: FakeClock) -> None:
    budget = DailyBudget("crm", 10, 0.0, clock.timing())
    for _ in range(10):
        budget.spend()
    clock.advance(25 * 3600)
    budget.spend()
    assert budget.used == 1


def test_vendor_usage_counts_override_our_own(clock: FakeClock) -> None:
    budget = DailyBudget("crm", None, 0.1, clock.timing())
    budget.spend()
    budget.observe(used=895, limit=1000)
    assert budget.used == 895
    for _ in range(5):
        budget.spend()
    with pytest.raises(BudgetExhausted):
        budget.spend()


async def test_budget_exhausted_is_raised_before_any_wait(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(daily_budget=2), clock.timing(), budget_reserve=0.0)
    for _ in range(2):
        async with limiter.slot():
            pass
    with pytest.raises(BudgetExhausted):
        async with limiter.slot():
            pass


async def test_pause_holds_every_caller_of_the_window(clock: FakeClock) -> None:
    window = Window(100, 10, clock.timing())
    window.pause(5)
    await asyncio.gather(window.acquire(), window.acquire())
    assert clock.monotonic() >= 5


async def test_spent_window_reported_by_headers_pauses_the_bucket(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(), clock.timing())
    limiter.observe("default", Usage(window_remaining=0, window_resets_in=3.0))
    async with limiter.slot():
        pass
    assert clock.monotonic() >= 3


async def test_a_429_pauses_other_callers_too(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(retry=RetryPolicy(attempts=1))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.get("/a").mock(return_value=httpx.Response(429, headers={"Retry-After": "5"}))
        other = mock.get("/b").mock(return_value=httpx.Response(200))
        with pytest.raises(TransientError):
            await client.request("GET", "/a")
        assert clock.monotonic() == 0
        await client.request("GET", "/b")
    assert other.call_count == 1
    assert clock.monotonic() >= 5


async def test_usage_header_hook_feeds_the_budget(clock: FakeClock) -> None:
    def read_usage(response: httpx.Response) -> Usage | None:
        used, _, limit = response.headers.get("X-Usage", "").partition("/")
        return Usage(daily_used=int(used), daily_limit=int(limit)) if limit else None

    context = ConnectorContext(system="crm", settings=SystemSettings(budget_reserve=0.1))
    client = build_http(
        context,
        base_url="https://api.example.test",
        auth=None,
        limits=limits(),
        observe_headers=read_usage,
        timing=clock.timing(),
    )
    try:
        with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
            mock.get("/x").mock(return_value=httpx.Response(200, headers={"X-Usage": "900/1000"}))
            await client.request("GET", "/x")
            with pytest.raises(BudgetExhausted):
                await client.request("GET", "/x")
    finally:
        await client.aclose()
