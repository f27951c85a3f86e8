"""Masking of credentials in any text: header values, token parameters, auth schemes, secrets."""

from __future__ import annotations

import logging
import re
import threading
import traceback
from urllib.parse import quote, quote_plus

MASK = "[redacted]"
MIN_SECRET_LENGTH = 4
"""Shorter values are not registered: masking them would shred every log line without protecting much."""
_MAX_SECRETS = 4096

_SENSITIVE_FIELDS = r"access_token|refresh_token|id_token|client_secret|token|password|passwd|api_key|apikey|assertion"
_SENSITIVE_HEADERS = r"authorization|proxy-authorization|cookie|set-cookie|x-api-key"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Header lines ("Authorization: Bearer x") and mappings ({'authorization': 'Bearer x'}).
    (
        re.compile(rf"""(?i)(["']?\b(?:{_SENSITIVE_HEADERS})["']?\s*[:=]\s*["']?)[^"'\r\n,}}]+"""),
        rf"\g<1>{MASK}",
    ),
    # JSON or Python-literal fields ("access_token": "x").
    (re.compile(rf"""(?i)(["'](?:{_SENSITIVE_FIELDS})["']\s*:\s*["'])[^"']*"""), rf"\g<1>{MASK}"),
    # Query strings and form bodies (client_secret=x&...); page_token= is a cursor, not a secret.
    (re.compile(rf"""(?i)((?<![\w-])(?:{_SENSITIVE_FIELDS})=)[^&\s"'#]+"""), rf"\g<1>{MASK}"),
    # Credentials after an auth scheme (Bearer x, Basic x, Foo-oauthtoken x).
    (
        re.compile(r"(?i)\b((?:Bearer|Basic|OAuth|[A-Za-z]+-oauthtoken)\s+)[A-Za-z0-9\-._~+/]{8,}=*"),
        rf"\g<1>{MASK}",
    ),
)

_lock = threading.Lock()
_secrets: dict[str, None] = {}  # insertion-ordered set, oldest dropped first
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded forms) wherever it appears in logs and error messages."""
    global _secret_pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        for form in (value, quote(value, safe=""), quote_plus(value)):
            _secrets.pop(form, None)
            _secrets[form] = None
        while len(_secrets) > _MAX_SECRETS:
            del _secrets[next(iter(_secrets))]
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first, so a secret's prefix never wins
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret and every recognisable credential masked."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for regex, replacement in _PATTERNS:
        text = regex.sub(replacement, text)
    return text


LOG_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
"""Attributes every log record has; anything else came in through ``extra=``."""


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, arguments, extra strings and traceback through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not turn a log call into a crash
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in LOG_RECORD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True
