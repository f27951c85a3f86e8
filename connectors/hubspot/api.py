"""Authenticated calls to one HubSpot portal: limits, auth, response classification and the search call."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from closeloop.connector import ConnectorContext
from closeloop.http import (
    Action,
    Auth,
    BearerAuth,
    BudgetExhausted,
    HttpClient,
    RefreshingAuth,
    RetryPolicy,
    Token,
    Usage,
    build_http,
    register_secret,
)
from closeloop.model import Limits, NativeRecord, now_utc, parse_utc

from .settings import HubSpotSettings

MAX_BATCH = 100  # batch endpoints and the GET list (archived records included)
MAX_SEARCH_LIMIT = 200  # search's ``limit``: the change stream reads this many records a call
SEARCH_BUCKET = "search"
MODIFIED = {
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    **dict.fromkeys(("calls", "emails", "meetings", "tasks"), "hs_lastmodifieddate"),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

JSON = dict[str, Any]
NEXT_AFTER = ("paging", "next", "after")
"""Where a HubSpot answer names its next page (absent on the last)."""


def hubspot_limits(settings: HubSpotSettings) -> Limits:
    """HubSpot's published limits (Professional tier: 190 calls / 10 s, 625,000 a day; search about 4 per
    second on its own, 200 results a page), with the admin's overrides from ``settings``.

    ``page_size`` is the search page (the change stream and lookups by value); batch and list endpoints take 100.
    """
    search = (settings.search_requests_per_window or 4, settings.search_window_seconds or 1.0)
    return Limits(
        max_write_batch=MAX_BATCH,
        max_read_batch=MAX_BATCH,
        page_size=min(settings.page_size or MAX_SEARCH_LIMIT, MAX_SEARCH_LIMIT),
        requests_per_window=settings.requests_per_window or 190,
        window_seconds=settings.window_seconds or 10.0,
        max_concurrency=settings.max_concurrency or 10,
        daily_budget=settings.daily_budget or 625_000,
        buckets={SEARCH_BUCKET: search},
    )


def classify_hubspot(response: httpx.Response) -> Action | None:
    """HubSpot's odd answers: a spent daily quota is not worth retrying today; 423 LOCKED passes."""
    if response.status_code == 429 and _body(response).get("policyName") == "DAILY":
        raise BudgetExhausted("HubSpot reports the portal's daily API limit as reached")
    if response.status_code == 423:  # a record locked by a merge or an import in progress
        return Action.RETRY
    return None


def read_usage(response: httpx.Response) -> Usage | None:
    """Quota from ``X-HubSpot-RateLimit-*`` headers (absent on search answers)."""
    headers = response.headers
    daily, left = (
        _int(headers.get("X-HubSpot-RateLimit-Daily")),
        _int(headers.get("X-HubSpot-RateLimit-Daily-Remaining")),
    )
    remaining = _int(headers.get("X-HubSpot-RateLimit-Remaining"))
    interval = _int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
    if daily is None and remaining is None:
        return None
    return Usage(
        daily_used=daily - left if daily is not None and left is not None else None,
        daily_limit=daily,
        window_remaining=remaining,
        window_resets_in=interval / 1000 if interval is not None else None,
    )


def millis(moment: datetime) -> str:
    """A datetime as the epoch milliseconds HubSpot's search filters take."""
    return str((moment - _EPOCH) // timedelta(milliseconds=1))


def to_record(obj: str, item: Mapping[str, Any], *, deleted: bool = False) -> NativeRecord:
    """A HubSpot object (SimplePublicObject) as a native record; archived ones are stamped ``archivedAt``."""
    props = dict(item.get("properties") or {})
    stamp = item.get("archivedAt") if deleted else props.get(MODIFIED[obj]) or item.get("updatedAt")
    return NativeRecord(id=str(item["id"]), modified_at=parse_utc(str(stamp)), fields=props, deleted=deleted)


class HubSpotApi:
    """One portal's HTTP client with HubSpot's auth, limits and classification."""

    def __init__(self, context: ConnectorContext, settings: HubSpotSettings) -> None:
        self.settings = settings
        for secret in settings.secrets():
            register_secret(secret)
        self.limits = hubspot_limits(settings)
        self._clock = context.clock or now_utc
        retry = RetryPolicy(
            attempts=settings.max_attempts,
            base_delay=settings.backoff_base_seconds,
            max_delay=settings.backoff_max_seconds,
        )
        common: dict[str, Any] = {"limits": self.limits, "classifier": classify_hubspot, "retry": retry}
        self._oauth: HttpClient | None = None
        auth: Auth
        if settings.access_token is not None:
            auth = BearerAuth(settings.access_token)
        else:
            # The token endpoint is outside the API's rate limits, so it gets its own client.
            self._oauth = build_http(context, base_url=settings.oauth_url, auth=None, **common)
            auth = RefreshingAuth(self._fetch_token, margin=timedelta(seconds=300), clock=self._clock)
        self.auth = auth
        self.http = build_http(context, base_url=settings.api_url, auth=auth, observe_headers=read_usage, **common)

    async def _fetch_token(self) -> Token:
        assert self._oauth is not None
        settings = self.settings
        assert settings.client_secret is not None
        assert settings.refresh_token is not None
        form = {
            "grant_type": "refresh_token",
            "client_id": settings.client_id or "",
            "client_secret": settings.client_secret.get_secret_value(),
            "refresh_token": settings.refresh_token.get_secret_value(),
        }
        response = await self._oauth.request("POST", "/oauth/v1/token", data=form, idempotent=True)
        return Token.from_oauth(response.json(), self._clock())

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        """GET a JSON object."""
        body = await self.http.get_json(path, params=params)
        return body if isinstance(body, dict) else {}

    async def post(self, path: str, body: Any, *, idempotent: bool, bucket: str = "default") -> JSON:
        """POST JSON and decode the answer (empty for 204)."""
        answer = await self.http.post_json(path, body, idempotent=idempotent, bucket=bucket)
        return answer if isinstance(answer, dict) else {}

    async def search(
        self,
        obj: str,
        filters: Sequence[JSON],
        *,
        sort: str,
        properties: Sequence[str],
        limit: int,
        after: str | None = None,
    ) -> JSON:
        """One page of ``POST /crm/v3/objects/{obj}/search`` (one filter group, one sort, ascending)."""
        body: JSON = {
            "filterGroups": [{"filters": list(filters)}] if filters else [],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": limit,
        }
        if after:
            body["after"] = after
        return await self.post(f"/crm/v3/objects/{obj}/search", body, idempotent=True, bucket=SEARCH_BUCKET)

    async def aclose(self) -> None:
        """Close the clients."""
        await self.http.aclose()
        if self._oauth is not None:
            await self._oauth.aclose()


def _body(response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
