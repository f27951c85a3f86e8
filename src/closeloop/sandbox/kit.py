"""What every vendor emulator shares: knobs, faults, rate windows, tokens, call counters and the control API.

A vendor sandbox subclasses :class:`SandboxBase`, declares its routes, and overrides the few hooks where the
vendor is odd: how a request authenticates, which rate bucket it spends, and how a 429, a 5xx or a bad token
looks in that vendor's JSON.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from closeloop.model import iso_utc, parse_utc
from closeloop.sandbox.records import RecordTable, SandboxClock


class JSONAnswer(JSONResponse):
    """A JSON response encoded by orjson, as compact as Starlette's and several times faster on big pages."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


async def read_json(request: Request) -> Any:
    """A request's JSON body (orjson's decode error is a ``json.JSONDecodeError``)."""
    return orjson.loads(await request.body())


@dataclass
class Knobs:
    """Latency, fault rates and limits of an emulator; change them at run time in-process or over HTTP."""

    latency_s: float = 0.0
    fault_429: float = 0.0
    fault_500: float = 0.0
    fault_502: float = 0.0
    fault_timeout: float = 0.0
    fault_timeout_after_apply: float = 0.0
    """Apply the request, then never answer: the ambiguous write."""
    timeout_sleep_s: float = 120.0
    fault_partial: float = 0.0
    """Chance that one record of a batch write fails with a validation error."""
    reject_values: list[str] = field(default_factory=list)
    """A write whose any field value equals one of these fails with the vendor's validation error."""
    enforce_limits: bool = True
    requests_per_window: int = 100
    window_s: float = 10.0
    daily_limit: int = 250_000
    bucket_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Extra buckets: name -> (requests, window seconds), e.g. a slower search endpoint."""
    concurrency_limit: int = 0
    """Requests served at once before the vendor refuses (0: no limit)."""
    token_ttl_s: int = 3600
    same_timestamp: str | None = None
    """RFC 3339 time stamped on every write while set: many records, one modified time."""

    def update(self, changes: dict[str, Any]) -> None:
        """Apply known knob changes; unknown names are refused."""
        unknown = sorted(set(changes) - set(asdict(self)))
        if unknown:
            raise KeyError(f"unknown knobs {unknown}")
        for name, value in changes.items():
            setattr(self, name, value)


@dataclass
class Stats:
    """Counters of an emulator: calls per endpoint, limit violations, injected faults, records written."""

    calls: Counter[str] = field(default_factory=Counter)
    violations: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    records_written: int = 0

    @property
    def total_calls(self) -> int:
        """All API calls served (control endpoints excluded)."""
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "calls": dict(self.calls),
            "total_calls": self.total_calls,
            "violations": self.violations,
            "faults": dict(self.faults),
            "records_written": self.records_written,
        }

    def reset(self) -> None:
        """Zero every counter."""
        self.calls.clear()
        self.faults.clear()
        self.violations = 0
        self.records_written = 0


@dataclass
class RateWindow:
    """A fixed window of N requests per W seconds, as vendors count them."""

    limit: int
    seconds: float
    stamps: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> bool:
        """Count a request at ``now``; False when it exceeds the window's limit."""
        while self.stamps and self.stamps[0] <= now - self.seconds:
            self.stamps.popleft()
        if len(self.stamps) >= self.limit:
            return False
        self.stamps.append(now)
        return True

    def remaining(self, now: float) -> int:
        """Requests left in the current window."""
        while self.stamps and self.stamps[0] <= now - self.seconds:
            self.stamps.popleft()
        return max(0, self.limit - len(self.stamps))


class Refusal(Exception):
    """Raised by a hook to answer a request with a vendor-shaped error."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass
class Tokens:
    """Access tokens issued by an emulator's auth endpoint."""

    clock: SandboxClock
    issued: dict[str, datetime] = field(default_factory=dict)
    static: set[str] = field(default_factory=set)

    def issue(self, ttl_s: int) -> str:
        """A new token valid for ``ttl_s`` seconds."""
        token = secrets.token_urlsafe(24)
        self.issued[token] = self.clock.now() + timedelta(seconds=ttl_s)
        return token

    def state(self, token: str | None) -> str:
        """'ok', 'expired' or 'invalid'."""
        if token is None:
            return "invalid"
        if token in self.static:
            return "ok"
        expires = self.issued.get(token)
        if expires is None:
            return "invalid"
        return "ok" if self.clock.now() < expires else "expired"

    def expire_all(self) -> None:
        """Expire every issued token now (token expiry mid-run)."""
        past = self.clock.now() - timedelta(seconds=1)
        self.issued = dict.fromkeys(self.issued, past)


class SandboxBase:
    """An emulated vendor API: a Starlette app plus the state, knobs and counters tests and benches drive."""

    vendor = "sandbox"
    control_prefix = "/__sandbox"
    trailing_slash = False
    """True where the vendor serves ``/path/`` as ``/path`` (no vendor answers with a redirect)."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], datetime] | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = SandboxClock(clock or (lambda: datetime.now(UTC)))
        self.knobs = Knobs()
        self.stats = Stats()
        self.tokens = Tokens(self.clock)
        self.tables: dict[str, RecordTable] = {}
        self.base_url = "http://sandbox.invalid"
        self._windows: dict[str, RateWindow] = {}
        self._daily = 0
        self._in_flight = 0
        self._routes = self.routes()
        self.app = Starlette(
            routes=[*self._routes, *self._control_routes()],
            exception_handlers={404: self._unrouted, 405: self._unrouted},
        )
        self.app.router.redirect_slashes = False

    # -- hooks a vendor overrides ------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """The vendor's API routes."""
        return []

    def authenticate(self, request: Request) -> None:
        """Raise :class:`Refusal` when the request's credentials are missing, wrong or expired."""

    def bucket(self, request: Request) -> str:
        """The rate bucket a request spends ('default' unless a vendor has slower endpoints)."""
        return "default"

    def rate_limited(self, bucket: str, daily: bool) -> Response:
        """The vendor's answer to a request over its limit."""
        return JSONAnswer({"message": "rate limit exceeded"}, status_code=429)

    def concurrency_limited(self, bucket: str) -> Response:
        """The vendor's answer to a request beyond its concurrency cap (a rate refusal unless it differs)."""
        return self.rate_limited(bucket, daily=False)

    def server_error(self, status: int) -> Response:
        """The vendor's answer to an internal failure."""
        return JSONAnswer({"message": "internal error"}, status_code=status)

    def limit_headers(self, bucket: str) -> dict[str, str]:
        """Usage headers the vendor adds to every answer."""
        return {}

    def credentials(self, directory: Path) -> dict[str, str]:
        """The connector settings this emulator accepts, by setting name, ``base_url`` included.

        ``closeloop sandbox`` prints them beside the URL as the environment variables the example configurations
        read. A credential that is a file (a private key) is written into ``directory`` and named by its path.
        """
        return {"base_url": self.base_url}

    def is_public(self, request: Request) -> bool:
        """True for endpoints that need no token (the auth endpoint itself)."""
        return False

    def not_found(self, request: Request) -> Response:
        """The vendor's answer to a path it does not serve."""
        return JSONAnswer({"message": f"no such resource {request.url.path}"}, status_code=404)

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        """The vendor's answer to a served path called with a method it does not take."""
        return JSONAnswer({"message": f"{request.method} not allowed; allowed: {allowed}"}, status_code=405)

    # -- shared behaviour --------------------------------------------------------------------------------
    def table(self, name: str) -> RecordTable:
        """The record table of one object."""
        return self.tables[name]

    def now(self) -> datetime:
        """The time stamped on writes: the frozen mass-update stamp when set, else the clock."""
        if self.knobs.same_timestamp:
            return parse_utc(self.knobs.same_timestamp)
        return self.clock.now()

    def rejects(self, fields: dict[str, Any]) -> str | None:
        """The field a forced per-record failure hits, if this record should fail."""
        for name, value in fields.items():
            if isinstance(value, str) and value in self.knobs.reject_values:
                return name
        if self.knobs.fault_partial and self.rng.random() < self.knobs.fault_partial:
            self.stats.faults["partial"] += 1
            return next(iter(fields), "id")
        return None

    def expire_tokens(self) -> None:
        """Expire every issued token."""
        self.tokens.expire_all()

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        """Starlette's 404/405 turned into the vendor's own answer (its error body, never bare text)."""
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return self.method_not_allowed(request, (exc.headers or {}).get("Allow", ""))
        return self.not_found(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.trailing_slash and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        if scope["type"] != "http" or scope["path"].startswith(self.control_prefix):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        label = self._label(scope)
        self.stats.calls[label] += 1
        response = await self._gate(request)
        if response is not None:
            await response(scope, receive, send)
            return
        await self._serve(scope, receive, send, self.bucket(request))

    async def _gate(self, request: Request) -> Response | None:
        """Latency, injected faults, auth and limits, in the order a real API applies them."""
        knobs = self.knobs
        if knobs.latency_s:
            await asyncio.sleep(knobs.latency_s)
        fault = self._draw_fault()
        if fault == "timeout":
            await asyncio.sleep(knobs.timeout_sleep_s)
            return self.server_error(504)
        if fault in ("500", "502"):
            return self.server_error(int(fault))
        if fault == "429":
            return self.rate_limited(self.bucket(request), daily=False)
        if not self.is_public(request):
            try:
                self.authenticate(request)
            except Refusal as refusal:
                return refusal.response
            return self._check_limits(self.bucket(request))
        return None

    def _draw_fault(self) -> str | None:
        knobs = self.knobs
        draws = (
            ("timeout", knobs.fault_timeout),
            ("500", knobs.fault_500),
            ("502", knobs.fault_502),
            ("429", knobs.fault_429),
        )
        for name, rate in draws:
            if rate and self.rng.random() < rate:
                self.stats.faults[name] += 1
                return name
        return None

    def _check_limits(self, bucket: str) -> Response | None:
        if not self.knobs.enforce_limits:
            return None
        now = asyncio.get_running_loop().time()
        if self._daily >= self.knobs.daily_limit:
            self.stats.violations += 1
            return self.rate_limited(bucket, daily=True)
        for name in {"default", bucket}:
            if not self._window(name).admit(now):
                self.stats.violations += 1
                return self.rate_limited(name, daily=False)
        self._daily += 1
        return None

    def _window(self, bucket: str) -> RateWindow:
        limit, seconds = self.knobs.bucket_limits.get(bucket, (self.knobs.requests_per_window, self.knobs.window_s))
        window = self._windows.get(bucket)
        if window is None or (window.limit, window.seconds) != (limit, seconds):
            window = self._windows[bucket] = RateWindow(limit, seconds)
        return window

    def remaining(self, bucket: str = "default") -> int:
        """Requests left in a bucket's current window."""
        return self._window(bucket).remaining(asyncio.get_running_loop().time())

    @property
    def daily_used(self) -> int:
        """Requests counted against the daily limit."""
        return self._daily

    async def _serve(self, scope: Scope, receive: Receive, send: Send, bucket: str) -> None:
        limit = self.knobs.concurrency_limit
        if limit and self._in_flight >= limit:
            self.stats.violations += 1
            await self.concurrency_limited(bucket)(scope, receive, send)
            return
        self._in_flight += 1
        headers = self.limit_headers(bucket)
        ambiguous = self.knobs.fault_timeout_after_apply and self.rng.random() < self.knobs.fault_timeout_after_apply

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start" and headers:
                extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            if not ambiguous:
                await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self._in_flight -= 1
        if ambiguous:
            self.stats.faults["timeout_after_apply"] += 1
            await asyncio.sleep(self.knobs.timeout_sleep_s)
            await self.server_error(504)(scope, receive, send)

    def _label(self, scope: Scope) -> str:
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return f"{scope['method']} {getattr(route, 'path', scope['path'])}"
        return f"{scope['method']} {scope['path']}"

    # -- the control API: /__sandbox/stats, /__sandbox/knobs, /__sandbox/expire-tokens -----------------
    def _control_routes(self) -> list[BaseRoute]:
        prefix = self.control_prefix
        return [
            Route(f"{prefix}/stats", self._stats_endpoint, methods=["GET", "DELETE"]),
            Route(f"{prefix}/knobs", self._knobs_endpoint, methods=["GET", "PATCH"]),
            Route(f"{prefix}/expire-tokens", self._expire_endpoint, methods=["POST"]),
        ]

    async def _stats_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.stats.reset()
        counts = {name: len(table) for name, table in self.tables.items()}
        return JSONAnswer(
            {
                **self.stats.snapshot(),
                "vendor": self.vendor,
                "records": counts,
                "daily_used": self._daily,
                "now": iso_utc(self.clock.now()),
            }
        )

    async def _knobs_endpoint(self, request: Request) -> Response:
        if request.method == "PATCH":
            try:
                self.knobs.update(await read_json(request))
            except (KeyError, ValueError) as exc:
                return JSONAnswer({"error": str(exc)}, status_code=400)
        return JSONAnswer(asdict(self.knobs))

    async def _expire_endpoint(self, request: Request) -> Response:
        self.expire_tokens()
        return JSONAnswer({"expired": len(self.tokens.issued)})
