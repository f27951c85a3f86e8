"""The HTTP client every connector uses: budget → auth → send with a deadline → classify → retry or settle."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

import httpx
import orjson
from tenacity import RetryCallState

from closeloop.http.auth import Auth
from closeloop.http.classify import Action, Classifier, classify
from closeloop.http.errors import (
    AuthError,
    BudgetExhausted,
    HttpError,
    TlsVerificationFailed,
    TransientError,
    Unreachable,
)
from closeloop.http.limiter import DEFAULT_BUCKET, RateLimiter, Slot, Usage
from closeloop.http.retry import (
    RetryableResponse,
    RetryPolicy,
    build_retrying,
    is_idempotent,
    never_sent,
    parse_retry_after,
    tls_verification_failed,
)
from closeloop.http.stats import HttpStats, endpoint_label
from closeloop.http.timing import Timing
from closeloop.model import Limits

log = logging.getLogger(__name__)

UsageReader = Callable[[httpx.Response], Usage | None]
"""A connector's hook reading vendor quota headers from a response."""


def decode_json(response: httpx.Response) -> Any:
    """A response's JSON body, None when it is empty (orjson: a page of records decodes several times faster)."""
    return orjson.loads(response.content) if response.content else None


def _encode_json(httpx_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments with a ``json=`` body encoded once, compactly, by orjson (httpx would use ``json``)."""
    body = httpx_kwargs.get("json")
    if body is None:
        return httpx_kwargs
    encoded = {key: value for key, value in httpx_kwargs.items() if key != "json"}
    encoded["content"] = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    encoded["headers"] = {**dict(httpx_kwargs.get("headers") or {}), "Content-Type": "application/json"}
    return encoded


class HttpClient:
    """One system's HTTP client; build it with :func:`build_http`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        system: str,
        auth: Auth | None,
        limiter: RateLimiter,
        classifier: Classifier | None,
        timeout: float,
        retry: RetryPolicy,
        timing: Timing,
        observe_headers: UsageReader | None = None,
        on_response: Callable[[str, httpx.Response], None] | None = None,
    ) -> None:
        self.system = system
        self.limiter = limiter
        self.stats = HttpStats()
        self._client = client
        self._auth = auth
        self._classifier = classifier
        self._timeout = timeout
        self._retry = retry
        self._timing = timing
        self._observe_headers = observe_headers
        self._on_response = on_response

    async def request(
        self,
        method: str,
        url: str,
        *,
        bucket: str = DEFAULT_BUCKET,
        idempotent: bool | None = None,
        endpoint: str | None = None,
        **httpx_kwargs: Any,
    ) -> httpx.Response:
        """Send one call under the budget and retry policy; a SUCCESS or IGNORE response is returned."""
        method = method.upper()
        httpx_kwargs = _encode_json(httpx_kwargs)
        idem = is_idempotent(method, idempotent)
        label = f"{method} {endpoint}" if endpoint else endpoint_label(method, httpx.URL(url))
        attempts = 0

        async def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return await self._attempt(method, url, bucket, label, httpx_kwargs)

        def on_retry(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s %s: %s; retry %d in %.1fs",
                self.system,
                label,
                _describe(exc),
                attempts,
                wait,
                extra={"system": self.system},
            )

        retrying = build_retrying(self._retry, self._timing, idempotent=idem, on_retry=on_retry)
        try:
            return await retrying(attempt)
        except (RetryableResponse, httpx.TransportError) as exc:
            self.stats.errors += 1
            raise self._give_up(exc, label, attempts, idempotent=idem) from _cause(exc)
        except Exception:
            self.stats.errors += 1
            raise

    def _give_up(self, exc: Exception, label: str, attempts: int, *, idempotent: bool) -> TransientError:
        """The error to raise once the retry loop ends without a usable response."""
        if isinstance(exc, RetryableResponse):
            status = exc.response.status_code
            outcome = f"gave up after {attempts} attempt(s)" if idempotent else "not retried (not idempotent)"
            return TransientError(
                f"{self.system} {label}: HTTP {status}, {outcome}",
                status=status,
                attempts=attempts,
                may_have_applied=not idempotent and exc.action is Action.RETRY,
            )
        if tls_verification_failed(exc):
            return TlsVerificationFailed(
                f"{self.system} {label}: TLS certificate verification failed: {_describe(exc)}"
            )
        message = f"{self.system} {label}: {_describe(exc)} after {attempts} attempt(s)"
        if never_sent(exc):
            return Unreachable(message, attempts=attempts)
        return TransientError(message, attempts=attempts, may_have_applied=not idempotent)

    @property
    def base_url(self) -> str:
        """The base URL relative paths are joined to."""
        return str(self._client.base_url)

    async def get_json(self, url: str, *, bucket: str = DEFAULT_BUCKET, **httpx_kwargs: Any) -> Any:
        """GET ``url`` and decode its JSON body (None when the body is empty)."""
        response = await self.request("GET", url, bucket=bucket, **httpx_kwargs)
        return decode_json(response)

    async def post_json(
        self,
        url: str,
        json: Any = None,
        *,
        idempotent: bool = False,
        bucket: str = DEFAULT_BUCKET,
        **httpx_kwargs: Any,
    ) -> Any:
        """POST ``json`` and decode the JSON answer; pass ``idempotent=True`` for upserts and reads."""
        response = await self.request("POST", url, bucket=bucket, idempotent=idempotent, json=json, **httpx_kwargs)
        return decode_json(response)

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._client.aclose()

    async def _attempt(
        self, method: str, url: str, bucket: str, label: str, httpx_kwargs: Mapping[str, Any]
    ) -> httpx.Response:
        refreshed = False
        while True:
            async with self.limiter.slot(bucket) as slot:
                request = self._client.build_request(method, url, **httpx_kwargs)
                credential = await self._authorize(request)
                self.stats.calls[label] += 1
                response = await self._send(request)
            log.debug("%s %s -> %d", self.system, label, response.status_code, extra={"system": self.system})
            action = self._classify(response, bucket, slot)
            if action is Action.REAUTH and not refreshed and self._auth is not None and credential is not None:
                refreshed = await self._auth.refresh(credential)
                if refreshed:
                    self.stats.reauths += 1
                    continue
            return self._settle(action, response, bucket)

    async def _authorize(self, request: httpx.Request) -> str | None:
        if self._auth is None:
            return None
        name, value = await self._auth.header()
        request.headers[name] = value
        return value

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            # In-process transports ignore httpx timeouts, so the deadline is enforced here for all.
            async with asyncio.timeout(self._timeout):
                response = await self._client.send(request)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no response within {self._timeout:g}s", request=request) from None
        return _acyclic(response)

    def _classify(self, response: httpx.Response, bucket: str, slot: Slot) -> Action:
        if self._on_response is not None:
            self._on_response(self.system, response)
        if self._observe_headers is not None:
            usage = self._observe_headers(response)
            if usage is not None:
                self.limiter.observe(bucket, usage, slot)
        try:
            action = classify(response, self._classifier)
        except BudgetExhausted:
            self.limiter.budget.exhaust()
            raise
        if action is Action.RATE_LIMITED:
            self.stats.rate_limited += 1
        return action

    def _settle(self, action: Action, response: httpx.Response, bucket: str) -> httpx.Response:
        if action in (Action.SUCCESS, Action.IGNORE):
            return response
        if action in (Action.RETRY, Action.RATE_LIMITED):
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._timing.now())
            if retry_after is not None:
                retry_after = min(retry_after, self._retry.retry_after_cap)
            if action is Action.RATE_LIMITED and retry_after is not None:
                self.limiter.pause(bucket, retry_after)  # everyone on the bucket waits, not just this caller
            raise RetryableResponse(action, response, retry_after)
        error = (AuthError if action is Action.REAUTH else HttpError)(response.status_code, response.text, response)
        error.system = self.system
        raise error


@lru_cache(maxsize=1)
def _verifying_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates verified against certifi's CAs, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` as the process started with), made once per process and shared by every client: each client
    made its own, loading the CA bundle again (about 20 ms of CPU, three times per engine)."""
    return httpx.create_ssl_context()


def _acyclic(response: httpx.Response) -> httpx.Response:
    """The response, its body (read in full, the stream closed) no longer held in a reference cycle.

    httpx binds a response's stream to the response (``BoundAsyncStream``), a cycle that reference counting never
    frees: every response, body and all, waited for the cycle collector. With the collector's passes made rare
    during a sync (``engine.gctune``), pages already decoded piled up, about 100 MB at 1,000,000 contacts. The
    stream is replaced by the body it produced, so a response goes as soon as its caller lets go of it.
    """
    response.stream = httpx.ByteStream(response.content)
    return response


def _cause(exc: Exception) -> Exception | None:
    """Chain transport errors for debugging; a retryable response is control flow, not a cause."""
    return None if isinstance(exc, RetryableResponse) else exc


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, RetryableResponse):
        return str(exc)
    if exc is None:
        return "no error"
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class HttpSettings(Protocol):
    """The admin's overrides ``build_http`` applies (``closeloop.connector.SystemSettings`` has them all)."""

    @property
    def requests_per_window(self) -> int | None: ...
    @property
    def window_seconds(self) -> float | None: ...
    @property
    def max_concurrency(self) -> int | None: ...
    @property
    def daily_budget(self) -> int | None: ...
    @property
    def budget_reserve(self) -> float: ...
    @property
    def timeout_seconds(self) -> float: ...


class HttpContext(Protocol):
    """What ``build_http`` needs of the system it serves; ``closeloop.connector.ConnectorContext`` is one.

    Declared here so the HTTP layer stays below the plugin contract: it knows no plugin, only these fields.
    """

    @property
    def system(self) -> str: ...
    @property
    def settings(self) -> HttpSettings: ...
    @property
    def transport(self) -> httpx.AsyncBaseTransport | None: ...
    @property
    def clock(self) -> Callable[[], datetime] | None: ...
    @property
    def on_response(self) -> Callable[[str, httpx.Response], None] | None: ...


def build_http(
    context: HttpContext,
    *,
    base_url: str,
    auth: Auth | None,
    limits: Limits,
    classifier: Classifier | None = None,
    headers: Mapping[str, str] | None = None,
    observe_headers: UsageReader | None = None,
    retry: RetryPolicy | None = None,
    timing: Timing | None = None,
) -> HttpClient:
    """The one way to make a system's HTTP client, with the admin's overrides from ``context.settings``."""
    settings = context.settings
    if timing is None:
        timing = Timing(now=context.clock) if context.clock else Timing()
    limiter = RateLimiter.from_limits(
        context.system,
        limits,
        timing,
        requests_per_window=settings.requests_per_window,
        window_seconds=settings.window_seconds,
        max_concurrency=settings.max_concurrency,
        daily_budget=settings.daily_budget,
        budget_reserve=settings.budget_reserve,
    )
    client = httpx.AsyncClient(
        base_url=base_url,
        headers=dict(headers or {}),
        timeout=settings.timeout_seconds,
        transport=context.transport,
        verify=_verifying_context(),
    )
    return HttpClient(
        client,
        system=context.system,
        auth=auth,
        limiter=limiter,
        classifier=classifier,
        timeout=settings.timeout_seconds,
        retry=retry or RetryPolicy(),
        timing=timing,
        observe_headers=observe_headers,
        on_response=context.on_response,
    )
