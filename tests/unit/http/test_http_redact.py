"""Redaction of credentials in text, log records, tracebacks and error messages."""

from __future__ import annotations

import logging
import sys

import pytest

from closeloop.http import HttpError, RedactingFilter, TransientError, redact, register_secret


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param("Authorization: Bearer abc.def.ghi-123", "abc.def.ghi-123", id="authorization-line"),
        pytest.param("{'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz", id="header-mapping"),
        pytest.param("Cookie: sid=s3ss10n-value; theme=dark", "s3ss10n-value", id="cookie"),
        pytest.param("set-cookie: sid=s3ss10n-value; Path=/", "s3ss10n-value", id="set-cookie"),
        pytest.param("/token?grant_type=x&client_secret=cs-999&client_id=a", "cs-999", id="query-secret"),
        pytest.param("refresh_token=rt-777&grant_type=refresh_token", "rt-777", id="form-refresh-token"),
        pytest.param('{"access_token": "at-555", "expires_in": 3600}', "at-555", id="json-access-token"),
        pytest.param('{"password":"hunter22"}', "hunter22", id="json-password"),
        pytest.param("?token=tk-4242&x=1", "tk-4242", id="query-token"),
        pytest.param("sent Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig", "eyJhbGciOiJSUzI1NiJ9", id="bearer"),
        pytest.param("header Custom-oauthtoken 1000.abcdef.123456", "1000.abcdef.123456", id="custom-scheme"),
    ],
)
def test_credentials_are_masked(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert "[redacted]" in masked


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("?page_token=abc123&limit=100", id="page-token-is-a-cursor"),
        pytest.param('{"next_page_token": "abc123"}', id="json-page-token"),
        pytest.param("token refresh took 3 s", id="prose"),
    ],
)
def test_non_secrets_are_kept(text: str) -> None:
    assert redact(text) == text


def test_registered_secret_and_its_url_encoded_form_are_masked() -> None:
    register_secret("s3cr3t/with+chars")
    masked = redact("raw s3cr3t/with+chars, query s3cr3t%2Fwith%2Bchars, form s3cr3t%2Fwith%2Bchars")
    assert "s3cr3t" not in masked


def test_very_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert redact("tab stab") == "tab stab"


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args or None, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_filter_masks_message_arguments_and_extra_fields() -> None:
    register_secret("filter-secret-1")
    rec = record("token %s for %s", "filter-secret-1", "crm", connection="x filter-secret-1")
    assert RedactingFilter().filter(rec)
    assert rec.getMessage() == "token [redacted] for crm"
    assert rec.connection == "x [redacted]"  # type: ignore[attr-defined]


def test_filter_masks_tracebacks() -> None:
    register_secret("traceback-secret-2")
    try:
        raise ValueError("failed with traceback-secret-2 and Authorization: Bearer zzzzzzzzzz")
    except ValueError:
        rec = logging.LogRecord("t", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    RedactingFilter().filter(rec)
    assert rec.exc_text is not None
    assert "ValueError" in rec.exc_text
    assert "traceback-secret-2" not in rec.exc_text
    assert "zzzzzzzzzz" not in rec.exc_text
    formatted = logging.Formatter().format(rec)
    assert "traceback-secret-2" not in formatted


def test_error_messages_are_masked() -> None:
    register_secret("error-secret-3")
    http_error = HttpError(400, '{"client_secret": "cs-1", "echo": "error-secret-3"}')
    transient = TransientError("GET /x?access_token=at-9 failed with error-secret-3")
    for text in (str(http_error), http_error.body_text, str(transient)):
        assert "error-secret-3" not in text
        assert "cs-1" not in text
        assert "at-9" not in text


def test_filter_survives_a_bad_format_string() -> None:
    register_secret("format-secret-4")
    rec = record("%d items", "format-secret-4")
    assert RedactingFilter().filter(rec)
    assert "format-secret-4" not in rec.getMessage()
