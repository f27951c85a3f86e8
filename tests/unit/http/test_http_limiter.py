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
    HttpClient,
    RateLimiter,
    RetryPolicy,
    Timing,
    TransientError,
    Usage,
    Window,
    build_http,
)
from closeloop.model import Limits
from closeloop.testing.clock import FakeClock

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


# -- how closely the window runs to the vendor's count -------------------------------------------------------


async def test_a_full_window_goes_at_once_and_the_next_call_one_window_after_the_first_answer(
    clock: FakeClock,
) -> None:
    limiter = RateLimiter.from_limits("crm", limits(), clock.timing())
    starts: list[float] = []

    async def call() -> None:
        async with limiter.slot():
            starts.append(clock.monotonic())

    await asyncio.gather(*(call() for _ in range(101)))
    assert starts[:100] == [0.0] * 100
    assert starts[100] == pytest.approx(10.0)  # no margin: the answer proves the vendor counted the call by then


async def test_a_place_frees_one_window_after_a_quick_answer(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(requests_per_window=2), clock.timing())
    for _ in range(2):
        async with limiter.slot():
            clock.advance(0.05)  # answered 50 ms after it was sent
    async with limiter.slot():
        assert clock.monotonic() == pytest.approx(10.05)


async def test_a_slow_answer_frees_its_place_one_window_and_the_guard_after_the_send(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(requests_per_window=1), clock.timing())
    async with limiter.slot():
        clock.advance(5.0)
    async with limiter.slot():
        assert clock.monotonic() == pytest.approx(10.0 + 10.0 * 0.02 + 0.01)


async def test_a_call_without_an_answer_holds_its_place_one_window_from_its_end(clock: FakeClock) -> None:
    limiter = RateLimiter.from_limits("crm", limits(requests_per_window=1), clock.timing())

    async def timed_out() -> None:
        async with limiter.slot():
            clock.advance(15.0)
            raise httpx.ReadTimeout("no answer")  # it may still reach the vendor

    with pytest.raises(httpx.ReadTimeout):
        await timed_out()
    async with limiter.slot():
        assert clock.monotonic() == pytest.approx(25.0)


async def test_a_place_given_back_unsent_is_free_at_once(clock: FakeClock) -> None:
    window = Window(1, 10.0, clock.timing())
    window.withdraw(await window.acquire())
    await window.acquire()
    assert clock.monotonic() == 0


async def test_a_waiter_wakes_when_the_call_holding_the_place_is_answered(clock: FakeClock) -> None:
    sleeps: list[float] = []

    async def never(seconds: float) -> None:  # only an answer can wake the waiter
        sleeps.append(seconds)
        await asyncio.Event().wait()

    window = Window(1, 10.0, Timing(now=clock, monotonic=clock.monotonic, sleep=never))
    first = await window.acquire()
    waiting = asyncio.ensure_future(window.acquire())
    for _ in range(3):
        await asyncio.sleep(0)
    assert sleeps == [pytest.approx(10.21)]  # until the guard's bound, while the call is in flight
    clock.advance(0.1)
    window.answered(first)
    for _ in range(10):
        await asyncio.sleep(0)
    assert sleeps[-1] == pytest.approx(10.0)  # now until one window after the answer, at 10.1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_search_waiting_for_the_default_window_is_not_counted_before_it_is_sent(clock: FakeClock) -> None:
    system = limits(requests_per_window=10, window_seconds=100.0, buckets={"search": (2, 1.0)})
    limiter = RateLimiter.from_limits("crm", system, clock.timing())
    for _ in range(10):
        async with limiter.slot():
            pass
    searches: list[float] = []

    async def search() -> None:
        async with limiter.slot("search"):
            searches.append(clock.monotonic())

    await asyncio.gather(*(search() for _ in range(4)))
    assert searches == pytest.approx([100.0, 100.0, 101.0, 101.0])
    assert most_in_any_window(searches, 1.0) == 2


async def test_a_window_reported_spent_by_our_own_calls_is_not_paused(
    make_client: MakeClient, clock: FakeClock
) -> None:
    def read_usage(response: httpx.Response) -> Usage | None:
        return Usage(window_remaining=int(response.headers["X-Remaining"]), window_resets_in=10.0)

    client = build_http(
        ConnectorContext(system="crm", settings=SystemSettings()),
        base_url="https://api.example.test",
        auth=None,
        limits=limits(),
        observe_headers=read_usage,
        timing=clock.timing(),
    )
    starts: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        starts.append(clock.monotonic())
        clock.advance(0.05)
        remaining = max(0, 100 - sum(1 for s in starts if s > starts[-1] - 10))
        return httpx.Response(200, headers={"X-Remaining": str(remaining)})

    try:
        with respx.mock(base_url=client.base_url) as mock:
            mock.get("/x").mock(side_effect=answer)
            for _ in range(101):
                await client.request("GET", "/x")
    finally:
        await client.aclose()
    assert starts[99] == pytest.approx(4.95)  # its answer said "0 left": our window knows, nothing to pause
    assert starts[100] == pytest.approx(10.05)  # one window after the first answer, not 10 s after the 100th


@pytest.mark.parametrize(
    ("ours", "usage"),
    [
        pytest.param(1, Usage(window_remaining=0, window_resets_in=3.0), id="another-client-spent-it"),
        pytest.param(
            100, Usage(window_remaining=0, window_resets_in=3.0, window_limit=190), id="vendor-counts-more-than-ours"
        ),
    ],
)
async def test_a_window_spent_beyond_our_own_calls_pauses_the_bucket(clock: FakeClock, ours: int, usage: Usage) -> None:
    limiter = RateLimiter.from_limits("crm", limits(requests_per_window=200), clock.timing())
    for _ in range(ours):
        async with limiter.slot() as slot:
            pass
    limiter.observe("default", usage, slot)
    async with limiter.slot():
        pass
    assert clock.monotonic() == pytest.approx(3.0)
