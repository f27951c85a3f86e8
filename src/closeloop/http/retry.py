"""The one retry policy: bounded attempts and time, full-jitter backoff, Retry-After, idempotent only."""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import AsyncRetrying, RetryCallState

from closeloop.http.classify import Action
from closeloop.http.timing import Timing

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop."""

    attempts: int = 6
    max_elapsed: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_after_cap: float = 120.0


class RetryableResponse(Exception):  # control flow only; never escapes
    """A response classified RETRY or RATE_LIMITED, raised so tenacity can decide on another attempt."""

    def __init__(self, action: Action, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code} ({action.value})")
        self.action = action
        self.response = response
        self.retry_after = retry_after


def is_idempotent(method: str, idempotent: bool | None) -> bool:
    """The caller's word if given, else whether the method is idempotent by definition (POST is not)."""
    return method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent


def never_sent(exc: BaseException) -> bool:
    """True for transport errors raised before the request could reach the server."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def tls_verification_failed(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a failed TLS certificate verification."""
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore wraps ssl: a short chain, bounded against cycles
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def should_retry(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether another attempt is allowed after ``exc``."""
    if tls_verification_failed(exc):
        return False
    if isinstance(exc, RetryableResponse):
        # A rate-limit refusal means the vendor did nothing with the request: sending it again cannot
        # duplicate a create, so even a plain POST may wait and retry. A 5xx might have applied it.
        return idempotent or exc.action is Action.RATE_LIMITED
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.ProxyError):
        return False
    if isinstance(exc, httpx.TransportError):
        return idempotent or never_sent(exc)
    return False


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta seconds or an HTTP date); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # an HTTP date is always GMT; parsedate leaves "-0000" naive
        moment = moment.replace(tzinfo=now.tzinfo)
    return max((moment - now).total_seconds(), 0.0)


def build_retrying(
    policy: RetryPolicy,
    timing: Timing,
    *,
    idempotent: bool,
    on_retry: Callable[[RetryCallState], None] | None = None,
    rng: Callable[[], float] = random.random,
) -> AsyncRetrying:
    """A tenacity loop for one request under ``policy``; the last error is re-raised when it gives up."""
    started = timing.monotonic()

    def stop(state: RetryCallState) -> bool:
        return state.attempt_number >= policy.attempts or timing.monotonic() - started >= policy.max_elapsed

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableResponse) and exc.retry_after is not None:
            return min(exc.retry_after, policy.retry_after_cap)
        ceiling = min(policy.max_delay, policy.base_delay * 2 ** (state.attempt_number - 1))
        return float(rng() * ceiling)  # full jitter: spreads many clients that failed at the same moment

    def retry(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is not None and should_retry(exc, idempotent=idempotent)

    return AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry,
        sleep=timing.sleep,
        reraise=True,
        before_sleep=on_retry,
    )
