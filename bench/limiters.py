"""Our rate limiter against aiolimiter and pyrate-limiter: overhead per acquire, a vendor's sliding window, bursts.

Not part of ``python -m bench``: it needs the two libraries, which closeloop does not depend on
(``pip install aiolimiter pyrate-limiter``). Run: ``python -m bench.limiters``.

The vendor is modelled as HubSpot's and Zoho's limits are enforced: at most N calls *arriving* in any window of T
seconds (a sliding window). 60 calls are sent, 5 at a time, each answered after 5 ms; a call counts as a violation
when, at its arrival, more than N calls arrived in the T seconds before it (inclusive).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aiolimiter import AsyncLimiter
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

from closeloop.http.limiter import RateLimiter
from closeloop.http.timing import Timing
from closeloop.model import Limits

N, T, CALLS, CONCURRENCY, LATENCY = 20, 0.5, 60, 5, 0.005
Acquire = Callable[[], AbstractAsyncContextManager[Any]]


def ours(requests: int, seconds: float) -> Acquire:
    limits = Limits(
        max_write_batch=100, max_read_batch=100, page_size=100, requests_per_window=requests, window_seconds=seconds,
        max_concurrency=CALLS,  # concurrency is the callers' gate here, as for the other two
    )  # fmt: skip
    limiter = RateLimiter.from_limits("bench", limits, Timing())
    return lambda: limiter.slot("default")


def aiolimiter(requests: int, seconds: float) -> Acquire:
    limiter = AsyncLimiter(requests, seconds)
    return lambda: limiter


def pyrate(requests: int, seconds: float) -> Acquire:
    limiter = Limiter(InMemoryBucket([Rate(requests, int(seconds * Duration.SECOND))]))

    @asynccontextmanager
    async def slot() -> Any:
        await limiter.try_acquire_async("bench")
        yield

    return slot


LIMITERS: dict[str, Callable[[int, float], Acquire]] = {"closeloop": ours, "aiolimiter": aiolimiter, "pyrate": pyrate}


async def overhead(make: Callable[[int, float], Acquire], calls: int = 100, repeats: int = 100) -> float:
    """Microseconds per acquire and release when no call waits, in a window holding up to ``calls`` places (a
    vendor's window: HubSpot 100-190 per 10 s); each repeat starts from a fresh limiter."""
    spent = 0.0
    for _ in range(repeats):
        acquire = make(10**9, 10.0)
        start = time.perf_counter()
        for _ in range(calls):
            async with acquire():
                pass
        spent += time.perf_counter() - start
    return spent / (calls * repeats) * 1e6


async def window(make: Callable[[int, float], Acquire], concurrency: int = CONCURRENCY) -> tuple[int, float, int]:
    """(violations, seconds for all calls, calls that went in the first 10 ms) against the vendor's window."""
    acquire = make(N, T)
    arrivals: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def call() -> None:
        async with gate, acquire():
            arrivals.append(time.monotonic())  # sent now, counted by the vendor on arrival
            await asyncio.sleep(LATENCY)

    await asyncio.gather(*(call() for _ in range(CALLS)))
    arrivals.sort()
    violations = sum(1 for i, at in enumerate(arrivals) if sum(1 for b in arrivals[: i + 1] if at - b < T) > N)
    return violations, arrivals[-1] - start, sum(1 for at in arrivals if at - start < 0.01)


async def run(measure: Callable[[Callable[[int, float], Acquire]], Awaitable[Any]]) -> dict[str, Any]:
    return {name: await measure(make) for name, make in LIMITERS.items()}


def main() -> None:
    costs = asyncio.run(run(overhead))
    windows = asyncio.run(run(window))
    bursts = asyncio.run(run(lambda make: window(make, concurrency=CALLS)))
    ideal = (CALLS // N - 1) * T
    print(f"== limiters: {CALLS} calls, {CONCURRENCY} at a time, vendor window {N} per {T:g} s (sliding)")
    print(f"  {'':12} {'us/acquire':>10} {'violations':>10} {'seconds':>8} {'burst':>6} {'violations':>10}")
    print(f"  {'(ideal)':12} {'':>10} {0:10d} {ideal:8.2f} {N:6d} {0:10d}")
    for name in LIMITERS:
        violations, seconds, _ = windows[name]
        burst_violations, _, burst = bursts[name]
        print(f"  {name:12} {costs[name]:10.1f} {violations:10d} {seconds:8.2f} {burst:6d} {burst_violations:10d}")
    print("  burst: calls in the first 10 ms when all 60 are asked at once (unbounded concurrency), and violations")


if __name__ == "__main__":
    main()
