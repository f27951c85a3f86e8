"""Webhook verification: generic checks (an HMAC signature over the request, shared tokens) that connector
plugins pick from and parametrise in their ``WebhookSpec`` (declared with the plugin contract in
:mod:`closeloop.connector`); the core knows no vendor's headers.

A verified webhook is only a hint to re-fetch: it schedules an early run, and the poll stays the source of truth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import SecretStr

from closeloop.connector import Verdict, WebhookRequest, WebhookSpec
from closeloop.webhook_bodies import BadBody, parse_json

TOKEN_HEADER = "x-closeloop-token"  # noqa: S105 - a header name, not a secret
"""The header carrying a shared secret, for senders that can set custom headers."""
MAX_BODY_BYTES = 1 << 20
"""Webhook bodies are small notifications; anything larger is refused before it is read."""

# Signers decode these before signing, so the URI must be compared in the same form.
_URI_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


ACCEPTED = Verdict(ok=True)


def shared_token(given: str | None, secret: SecretStr) -> Verdict:
    """A shared secret compared in constant time."""
    if not given:
        return Verdict(ok=False, reason="no token")
    expected = secret.get_secret_value().encode()
    return ACCEPTED if hmac.compare_digest(given.encode(), expected) else Verdict(ok=False, reason="wrong token")


def hmac_signature(
    request: WebhookRequest,
    secret: SecretStr,
    now: datetime,
    *,
    signature_header: str,
    timestamp_header: str,
    max_age: timedelta = timedelta(minutes=5),
) -> Verdict:
    """HMAC-SHA256 (base64) over ``method + URI + body + timestamp``, timestamp in ms no further than ``max_age``."""
    signature = request.headers.get(signature_header)
    stamp = request.headers.get(timestamp_header)
    if not signature or not stamp:
        return Verdict(ok=False, reason="no signature or timestamp")
    try:
        sent_ms = int(stamp)
    except ValueError:
        return Verdict(ok=False, reason="timestamp is not a number")
    age_ms = now.timestamp() * 1000 - sent_ms
    # A timestamp far in the future is as suspicious as a stale one: both allow a replay later.
    if abs(age_ms) > max_age.total_seconds() * 1000:
        return Verdict(ok=False, reason="stale timestamp")
    uri = request.uri
    for encoded, plain in _URI_DECODE.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    message = request.method.upper().encode() + uri.encode() + request.body + stamp.encode()
    digest = hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).digest()
    expected = base64.b64encode(digest)
    if hmac.compare_digest(signature.encode(), expected):
        return ACCEPTED
    return Verdict(ok=False, reason="bad signature")


def header_token(request: WebhookRequest, secret: SecretStr, now: datetime) -> Verdict:
    """The shared secret in the ``X-Closeloop-Token`` header."""
    return shared_token(request.headers.get(TOKEN_HEADER), secret)


def url_or_header_token(request: WebhookRequest, secret: SecretStr, now: datetime) -> Verdict:
    """The shared secret in the URL (``?token=``) or the header, for senders with a fixed endpoint URL."""
    return shared_token(request.query.get("token") or request.headers.get(TOKEN_HEADER), secret)


def body_token(request: WebhookRequest, secret: SecretStr, now: datetime) -> Verdict:
    """The channel token echoed in a JSON body's ``token`` field."""
    try:
        payload = parse_json(request.body)
    except BadBody as exc:
        return Verdict(ok=False, reason=exc.reason)
    token = payload.get("token") if isinstance(payload, dict) else None
    return shared_token(token if isinstance(token, str) else None, secret)


def verify(spec: WebhookSpec, request: WebhookRequest, secret: SecretStr | None, now: datetime) -> Verdict:
    """Verify a webhook against its connector's spec; without a configured secret nothing can be authentic."""
    if secret is None:
        return Verdict(ok=False, reason="no secret configured")
    return spec.verify(request, secret, now)


def secret_variable(connector: str) -> str:
    """The environment variable holding a connector's webhook secret: ``CLOSELOOP_WEBHOOK_<NAME>_SECRET``."""
    return f"CLOSELOOP_WEBHOOK_{connector.upper()}_SECRET"


def secrets_from(environ: Mapping[str, str], connectors: Iterable[str]) -> dict[str, SecretStr]:
    """The webhook secrets set in the environment, by connector name."""
    found = {name: environ.get(secret_variable(name), "") for name in connectors}
    return {name: SecretStr(value) for name, value in found.items() if value}


__all__ = [
    "ACCEPTED",
    "MAX_BODY_BYTES",
    "TOKEN_HEADER",
    "Verdict",
    "WebhookRequest",
    "WebhookSpec",
    "body_token",
    "header_token",
    "hmac_signature",
    "secret_variable",
    "secrets_from",
    "shared_token",
    "url_or_header_token",
    "verify",
]
