"""Marketo's wire contract on top of the shared HTTP layer: token, error codes inside HTTP 200, lead reads.

Marketo says almost everything with HTTP 200. The classifier below reads ``success: false`` bodies so that the
shared retry path, re-authentication and the daily budget see them as what they are.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx

from closeloop.connector import ConnectorContext
from closeloop.http import (
    Action,
    BudgetExhausted,
    HttpClient,
    RefreshingAuth,
    RetryPolicy,
    Token,
    build_http,
    register_secret,
)
from closeloop.http.paging import TokenPaginator, paginate
from closeloop.model import Limits, now_utc

from .settings import MarketoSettings

MAX_BATCH = 300
NEXT_TOKEN, MORE_RESULT = ("nextPageToken",), ("moreResult",)
"""Where a Marketo answer names its next page, and (activities) says whether one follows."""
REAUTH_CODES = frozenset({"600", "601", "602"})
"""Token missing, invalid, expired: fetch a token and try once more."""
RATE_CODES = frozenset({"606", "615"})
"""Over 100 calls per 20 s, or over 10 calls at once."""
TRANSIENT_CODES = frozenset({"604", "608", "611", "713"})
"""Timed out, temporarily unavailable, system error, transient service error."""
QUOTA_CODE = "607"
LONG_QUERY = 6_000
"""Longer queries go as POST with ``_method=GET`` (Marketo's answer to its URL length limit)."""


class MarketoError(Exception):
    """A call Marketo refused as a whole with a permanent code (``success: false``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def error_code(response: httpx.Response) -> tuple[str, str] | None:
    """The first (code, message) of a ``success: false`` body, or None."""
    if response.status_code != 200 or b'"success"' not in response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("success") is not False:
        return None
    errors = body.get("errors") or [{}]
    return str(errors[0].get("code", "")), str(errors[0].get("message", ""))


def classify_marketo(response: httpx.Response) -> Action | None:
    """Route Marketo's in-body codes: 601/602 re-auth, 606/615 rate, 604/608/611 retry, 607 budget spent."""
    found = error_code(response)
    if found is None:
        return None
    code, message = found
    if code in REAUTH_CODES:
        return Action.REAUTH
    if code in RATE_CODES:
        return Action.RATE_LIMITED
    if code in TRANSIENT_CODES:
        return Action.RETRY
    if code == QUOTA_CODE:
        raise BudgetExhausted(f"Marketo daily quota reached (607): {message}")
    return None  # a permanent refusal: the caller reads it from the body


def marketo_limits(settings: MarketoSettings) -> Limits:
    """Marketo's published limits: 100 calls / 20 s, 10 concurrent, 50,000 a day, 300 per batch."""
    return Limits(
        max_write_batch=MAX_BATCH,
        max_read_batch=MAX_BATCH,
        page_size=min(settings.page_size or MAX_BATCH, MAX_BATCH),
        requests_per_window=100,
        window_seconds=20.0,
        max_concurrency=10,
        daily_budget=50_000,
    )


def padded_window(settings: MarketoSettings, limits: Limits) -> MarketoSettings:
    """Settings whose rate window is 2% (at least 50 ms) longer than Marketo's.

    Marketo counts a call when it arrives, the limiter when it starts: the few milliseconds between vary from
    call to call, and back-to-back calls at a window's edge would otherwise land 101 in 20 seconds.
    """
    window = settings.window_seconds or limits.window_seconds
    return settings.model_copy(update={"window_seconds": window + max(window * 0.02, 0.05)})


class MarketoApi:
    """Authenticated calls to one Marketo instance; refusals become :class:`MarketoError`."""

    def __init__(self, context: ConnectorContext, settings: MarketoSettings) -> None:
        self.settings = settings
        register_secret(settings.client_secret.get_secret_value())
        limits = marketo_limits(settings)
        context = replace(context, settings=padded_window(settings, limits))
        retry = RetryPolicy(
            attempts=settings.max_attempts,
            base_delay=settings.backoff_base_seconds,
            max_delay=settings.backoff_max_seconds,
        )
        # The identity call is not counted by Marketo, so it gets its own client and limiter.
        self._identity = build_http(
            context, base_url=settings.identity_url, auth=None, limits=limits,
            classifier=classify_marketo, retry=retry,
        )  # fmt: skip
        self._clock = context.clock or now_utc
        # Marketo hands out the same token until it expires, expires_in counting down: a small margin keeps
        # a nearly spent token from causing an identity call before every request.
        self.auth = RefreshingAuth(self._fetch_token, margin=timedelta(seconds=10), clock=self._clock)
        self.http: HttpClient = build_http(
            context, base_url=settings.api_url, auth=self.auth, limits=limits,
            classifier=classify_marketo, retry=retry,
        )  # fmt: skip

    async def _fetch_token(self) -> Token:
        # Client credentials go in a form body, never in a URL that proxies and logs keep.
        form = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
        }
        response = await self._identity.request("POST", "/identity/oauth/token", data=form, idempotent=True)
        payload = response.json()
        if "access_token" not in payload:
            raise MarketoError(str(payload.get("error", "identity")), str(payload.get("error_description", "")))
        return Token.from_oauth(payload, self._clock())

    async def _warm_token(self) -> None:
        # Fetch or renew the token before taking a rate slot: a slow identity call inside the slot would
        # delay that request's arrival and bunch it with later ones in Marketo's 20-second window.
        await self.auth.header()

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET a REST path; long queries go as POST ``_method=GET`` with a form body."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        await self._warm_token()
        if len(urlencode(query)) > LONG_QUERY:
            response = await self.http.request(
                "POST", path, params={"_method": "GET"}, data=query, idempotent=True, endpoint=path
            )
        else:
            response = await self.http.request("GET", path, params=query, endpoint=path)
        return checked(response)

    async def post(self, path: str, body: Any, *, idempotent: bool) -> dict[str, Any]:
        """POST a JSON body to a REST path."""
        await self._warm_token()
        response = await self.http.request("POST", path, json=body, idempotent=idempotent, endpoint=path)
        return checked(response)

    async def leads(
        self, filter_type: str, values: Sequence[str], fields: Sequence[str], *, batch: int = MAX_BATCH
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Leads whose ``filter_type`` is one of ``values``, 300 values per call, following nextPageToken."""
        usable = [v for v in dict.fromkeys(values) if v and "," not in v]  # a comma would split the value
        for start in range(0, len(usable), MAX_BATCH):
            params: dict[str, Any] = {
                "filterType": filter_type,
                "filterValues": ",".join(usable[start : start + MAX_BATCH]),
                "fields": ",".join(fields),
                "batchSize": min(batch, MAX_BATCH),
            }
            pages = TokenPaginator(params, NEXT_TOKEN, "nextPageToken")
            async for body in paginate(partial(self.get, "/rest/v1/leads.json"), pages):
                yield list(body.get("result") or [])

    async def aclose(self) -> None:
        """Close both clients."""
        await self.http.aclose()
        await self._identity.aclose()


def checked(response: httpx.Response) -> dict[str, Any]:
    """The JSON body, or :class:`MarketoError` for ``success: false``."""
    try:
        body = response.json()
    except json.JSONDecodeError as exc:
        raise MarketoError("invalid-json", f"HTTP {response.status_code}: not JSON") from exc
    found = error_code(response)
    if found is not None:
        raise MarketoError(*found)
    return body if isinstance(body, dict) else {"result": body}
