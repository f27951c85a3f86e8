"""Credentials for requests: a static token, or a token fetched and refreshed before it expires."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import SecretStr

from closeloop.http.redact import register_secret
from closeloop.model import now_utc


class Auth(Protocol):
    """What the client asks of an authenticator."""

    async def header(self) -> tuple[str, str]:
        """The header (name, value) to send now."""
        ...

    async def refresh(self, rejected: str) -> bool:
        """The vendor refused header value ``rejected``: renew if possible; True if a retry may succeed."""
        ...


class BearerAuth:
    """A fixed token sent as ``Authorization: <scheme> <token>``; a refusal is final."""

    def __init__(self, token: str | SecretStr, *, scheme: str = "Bearer", header: str = "Authorization") -> None:
        value = token.get_secret_value() if isinstance(token, SecretStr) else token
        register_secret(value)
        self._header = header
        self._value = f"{scheme} {value}" if scheme else value

    async def header(self) -> tuple[str, str]:
        """The fixed header."""
        return self._header, self._value

    async def refresh(self, rejected: str) -> bool:
        """A fixed token cannot be renewed."""
        return False


@dataclass(frozen=True)
class Token:
    """An access token and when it expires (None: unknown, used until refused)."""

    value: str = field(repr=False)
    expires_at: datetime | None = None

    @classmethod
    def from_oauth(cls, payload: Mapping[str, Any], now: datetime) -> Token:
        """A token from an OAuth token response (``access_token``, optional ``expires_in`` seconds)."""
        expires_in = payload.get("expires_in")
        expires_at = now + timedelta(seconds=float(expires_in)) if expires_in is not None else None
        return cls(str(payload["access_token"]), expires_at)


class RefreshingAuth:
    """A token from ``fetch()``, renewed ``margin`` before expiry and once when refused; single-flight."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Token]],
        *,
        scheme: str = "Bearer",
        header: str = "Authorization",
        margin: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._fetch = fetch
        self._scheme = scheme
        self._header = header
        self._margin = margin
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def header(self) -> tuple[str, str]:
        """The header with a token valid for at least ``margin`` more."""
        token = self._token
        if token is None or self._expiring(token):
            async with self._lock:  # single flight: whoever waited here finds the token the first caller got
                token = self._token
                if token is None or self._expiring(token):
                    token = await self._renew()
        return self._header, self._format(token)

    async def refresh(self, rejected: str) -> bool:
        """Renew unless another caller already replaced the refused token; a retry may then succeed."""
        async with self._lock:
            if self._token is None or self._format(self._token) == rejected:
                await self._renew()
        return True

    def _expiring(self, token: Token) -> bool:
        return token.expires_at is not None and token.expires_at - self._margin <= self._clock()

    async def _renew(self) -> Token:
        self._token = None
        token = await self._fetch()
        self.fetches += 1
        register_secret(token.value)
        self._token = token
        return token

    def _format(self, token: Token) -> str:
        return f"{self._scheme} {token.value}" if self._scheme else token.value
