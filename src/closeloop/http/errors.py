"""The errors the HTTP layer raises; their text never carries headers or secrets."""

from __future__ import annotations

import httpx

from closeloop.http.redact import redact

_BODY_IN_MESSAGE = 500


class HttpLayerError(Exception):
    """Base of every error raised by ``closeloop.http``."""

    system: str | None = None
    """The configured system whose call failed, where the layer that raised knows it (for run histories)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class HttpError(HttpLayerError):
    """A response the classifier called FAIL; adapters turn it into a per-record or permanent error."""

    def __init__(self, status: int, body_text: str, response: httpx.Response | None = None) -> None:
        self.status = status
        self.body_text = redact(body_text)
        self.response = response
        snippet = self.body_text[:_BODY_IN_MESSAGE]
        super().__init__(f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}")


class AuthError(HttpError):
    """The credentials were refused even after one refresh."""


class TransientError(HttpLayerError):
    """A failure that may pass (5xx, 429, timeout) but persisted through every allowed attempt."""

    def __init__(
        self, message: str, *, status: int | None = None, attempts: int = 1, may_have_applied: bool = False
    ) -> None:
        self.status = status
        self.attempts = attempts
        self.may_have_applied = may_have_applied
        """True when a write may have reached the server (a lost response): re-read before re-sending."""
        super().__init__(message)


class Unreachable(TransientError):
    """The host could not be reached at all after every allowed attempt (the CLI exits with 3)."""


class TlsVerificationFailed(Unreachable):
    """The server's TLS certificate did not verify: retrying cannot help, so it is never retried."""


class BudgetExhausted(HttpLayerError):
    """The daily API budget (minus its reserve) is spent; no call is sent until it recovers."""
