"""Webhook verification: generic checks (HMAC v3, shared token) and the small table of who uses which.

A verified webhook is only a hint to re-fetch: it schedules an early run, and the poll stays the source of truth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr

TOKEN_HEADER = "x-closeloop-token"  # noqa: S105 - a header name, not a secret
"""The header carrying a shared secret, for senders that can set custom headers (Marketo, Salesforce)."""
MAX_BODY_BYTES = 1 << 20
"""Webhook bodies are small notifications; anything larger is refused before it is read."""

# HubSpot decodes these before signing, so the URI must be compared in the same form.
_URI_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


@dataclass(frozen=True)
class WebhookRequest:
    """What a verifier may look at: method, the full URI as the sender called it, headers (lower-case), body."""

    method: str
    uri: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Verdict:
    """Whether a webhook is authentic, and why not (for the log, never for the caller)."""

    ok: bool
    reason: str = ""


ACCEPTED = Verdict(ok=True)
Verifier = Callable[[WebhookRequest, SecretStr, datetime], Verdict]


def shared_token(given: str | None, secret: SecretStr) -> Verdict:
    """A shared secret compared in constant time."""
    if not given:
        return Verdict(ok=False, reason="no token")
    expected = secret.get_secret_value().encode()
    return ACCEPTED if hmac.compare_digest(given.encode(), expected) else Verdict(ok=False, reason="wrong token")


def hmac_v3(
    request: WebhookRequest,
    secret: SecretStr,
    now: datetime,
    *,
    signature_header: str = "x-hubspot-signature-v3",
    timestamp_header: str = "x-hubspot-request-timestamp",
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
        payload = json.loads(request.body)
    except ValueError:
        return Verdict(ok=False, reason="body is not JSON")
    token = payload.get("token") if isinstance(payload, dict) else None
    return shared_token(token if isinstance(token, str) else None, secret)


_SOAP_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


@dataclass(frozen=True)
class WebhookRoute:
    """How webhooks for one connector are verified, and the body a sender needs as acknowledgement."""

    verify: Verifier
    ack: tuple[str, str] | None = None
    """(media type, body) of the reply; None: a small JSON reply."""


ROUTES: Mapping[str, WebhookRoute] = {
    # Keyed by connector name: /webhooks/<connector> is the public URL each vendor is configured with.
    "hubspot": WebhookRoute(hmac_v3),
    "zoho": WebhookRoute(body_token),
    "marketo": WebhookRoute(header_token),
    # Outbound messages are retried for 24 hours unless acknowledged in SOAP.
    "salesforce": WebhookRoute(url_or_header_token, ack=("text/xml", _SOAP_ACK)),
}


def verify(connector: str, request: WebhookRequest, secrets: Mapping[str, SecretStr], now: datetime) -> Verdict:
    """Verify a webhook for ``connector``; without a configured secret nothing can be authentic."""
    route = ROUTES.get(connector)
    if route is None:
        return Verdict(ok=False, reason="no such webhook")
    secret = secrets.get(connector)
    if secret is None:
        return Verdict(ok=False, reason=f"no secret configured (CLOSELOOP_WEBHOOK_{connector.upper()}_SECRET)")
    return route.verify(request, secret, now)
