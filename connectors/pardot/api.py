"""Account Engagement's wire contract on the shared HTTP layer: Salesforce OAuth, the business-unit header,
v5's ``{code, message}`` errors, and the one query loop over ``nextPageToken``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

from closeloop.connector import ConnectorContext
from closeloop.http import (
    Action,
    AuthError,
    BudgetExhausted,
    HttpClient,
    HttpError,
    RefreshingAuth,
    RetryPolicy,
    Token,
    build_http,
    decode_json,
    register_secret,
)
from closeloop.http.paging import KeysetPaginator, paginate
from closeloop.model import Limits, now_utc

from .settings import DAILY_CALLS, PardotSettings

API = "/api/v5/objects"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a password
MAX_LIMIT = 1000
CONCURRENCY = 5
RATE_CODES = frozenset({66})
"""More than 5 requests at once."""
RETRY_CODES = frozenset({62, 183, 202, 214})
"""Conflicting update, internal error, minute rate or timeout, request timeout: worth another attempt."""
DAILY_CODE, TOKEN_CODE = 122, 184
TOKEN_EXPIRED, TOKEN_INVALID = 210, 211
SEQUENCE_CUT = "203"
"""Pardot-Warning 203: the token sequence reached 100,000 records and stopped."""


class PardotError(Exception):
    """A call Account Engagement refused for good, with its v5 code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    @classmethod
    def from_http(cls, exc: HttpError) -> PardotError:
        """The v5 ``{code, message}`` of a refused call (code 0 when the body has none)."""
        body = _body(exc.response) if exc.response is not None else None
        if body is None:
            return cls(exc.status, 0, exc.body_text or f"HTTP {exc.status}")
        return cls(exc.status, int(body[0]), body[1])


def _body(response: httpx.Response) -> tuple[int, str] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        return None
    return body["code"], str(body.get("message", ""))


def classify_pardot(response: httpx.Response) -> Action | None:
    """Route v5 codes: 66 rate, 62/183/202/214 retry, 184 re-auth, 122 the day's budget is spent."""
    if response.status_code < 400:
        return None
    found = _body(response)
    if found is None:
        return None
    code, message = found
    if code == DAILY_CODE:
        raise BudgetExhausted(f"Account Engagement daily API limit met (122): {message}")
    if code in RATE_CODES:
        return Action.RATE_LIMITED
    if code in RETRY_CODES:
        return Action.RETRY
    if code == TOKEN_CODE:
        return Action.REAUTH
    return None  # the status table: a 401 (201: wrong business unit or host) re-authenticates once, then fails


def pardot_limits(settings: PardotSettings) -> Limits:
    """5 requests at once, the edition's daily calls, 1,000 records a page; one prospect per write call."""
    return Limits(
        max_write_batch=50,
        max_read_batch=50,
        page_size=min(settings.page_size or MAX_LIMIT, MAX_LIMIT),
        requests_per_window=1_000,  # v5 publishes no short window: concurrency and the day are the limits
        window_seconds=1.0,
        max_concurrency=CONCURRENCY,
        daily_budget=DAILY_CALLS[settings.edition],
    )


@dataclass(frozen=True)
class QueryPage:
    """One page of a query, and whether its token sequence was cut at 100,000 records."""

    values: list[dict[str, Any]]
    cut: bool = False
    token: str | None = None
    """The next page's ``nextPageToken``; None on a sequence's last page."""


class PardotApi:
    """Authenticated v5 calls to one business unit; refusals raise :class:`PardotError`."""

    def __init__(self, context: ConnectorContext, settings: PardotSettings) -> None:
        self.settings = settings
        register_secret(settings.client_secret.get_secret_value())
        limits = pardot_limits(settings)
        retry = RetryPolicy(
            attempts=settings.max_attempts,
            base_delay=settings.backoff_base_seconds,
            max_delay=settings.backoff_max_seconds,
        )
        self._clock = context.clock or now_utc
        self._login = build_http(context, base_url=settings.login_url, auth=None, limits=limits, retry=retry)
        self.auth = RefreshingAuth(self._fetch_token, clock=self._clock)
        self.http: HttpClient = build_http(
            context, base_url=settings.api_url, auth=self.auth, limits=limits, classifier=classify_pardot,
            headers={"Pardot-Business-Unit-Id": settings.business_unit_id}, retry=retry,
        )  # fmt: skip

    async def _fetch_token(self) -> Token:
        settings = self.settings
        form = {
            "grant_type": settings.auth_flow,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        }
        if settings.refresh_token is not None:
            form["refresh_token"] = settings.refresh_token.get_secret_value()
        try:
            response = await self._login.request("POST", TOKEN_PATH, data=form, idempotent=True)
        except HttpError as exc:
            raise AuthError(exc.status, f"Salesforce refused the {settings.auth_flow} grant: {exc.body_text}") from None
        # Salesforce gives no expires_in: the session lasts the org's timeout, and a 184 asks for a new grant.
        return Token.from_oauth(response.json(), self._clock())

    async def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
        idempotent: bool = True,
    ) -> httpx.Response:  # fmt: skip
        """One v5 call; a refusal becomes :class:`PardotError`."""
        kwargs: dict[str, Any] = {"params": dict(params or {})}
        if body is not None:
            kwargs["json"] = body
        try:
            return await self.http.request(method, path, idempotent=idempotent, endpoint=_label(path), **kwargs)
        except AuthError:
            raise
        except HttpError as exc:
            raise PardotError.from_http(exc) from None

    async def query(
        self, collection: str, fields: Sequence[str], params: Mapping[str, Any]
    ) -> AsyncIterator[QueryPage]:
        """Every page of a query, following ``nextPageToken`` (with which only ``fields`` may be sent)."""
        pages = KeysetPaginator(dict(params), _after_token)
        async for page in paginate(partial(self.page, collection, fields), pages):
            yield page

    async def page(self, collection: str, fields: Sequence[str], params: Mapping[str, Any]) -> QueryPage:
        """One page of a query: the first for the query's parameters, a later one for ``nextPageToken``."""
        response = await self.call("GET", f"{API}/{collection}", params={"fields": ",".join(fields), **params})
        body = decode_json(response) or {}
        token = body.get("nextPageToken") or None
        cut = response.headers.get("Pardot-Warning", "").startswith(SEQUENCE_CUT)
        return QueryPage(list(body.get("values") or []), cut=cut and not token, token=token)

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self._login.aclose()
        await self.http.aclose()


def _label(path: str) -> str:
    """The endpoint label of a path, ids folded (``/objects/prospects/{id}``)."""
    parts = ["{id}" if part.isdigit() else part for part in path.split("/")]
    return "/".join(parts)


def _after_token(page: QueryPage) -> dict[str, Any] | None:
    """The parameters of the page after ``page``: its token alone (v5 refuses filters beside one)."""
    return {"nextPageToken": page.token} if page.token else None
