"""Classification table, vendor classifiers, and the retry rules that read it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from closeloop.http import Action, by_status, chain, classify, parse_retry_after
from closeloop.http.retry import RetryableResponse, is_idempotent, should_retry


@pytest.mark.parametrize(
    ("status", "action"),
    [
        pytest.param(200, Action.SUCCESS, id="200-success"),
        pytest.param(201, Action.SUCCESS, id="201-success"),
        pytest.param(204, Action.SUCCESS, id="204-success"),
        pytest.param(207, Action.SUCCESS, id="207-multi-status-success"),
        pytest.param(429, Action.RATE_LIMITED, id="429-rate-limited"),
        pytest.param(500, Action.RETRY, id="500-retry"),
        pytest.param(502, Action.RETRY, id="502-retry"),
        pytest.param(503, Action.RETRY, id="503-retry"),
        pytest.param(504, Action.RETRY, id="504-retry"),
        pytest.param(401, Action.REAUTH, id="401-reauth"),
        pytest.param(400, Action.FAIL, id="400-fail"),
        pytest.param(403, Action.FAIL, id="403-fail"),
        pytest.param(404, Action.FAIL, id="404-fail"),
        pytest.param(501, Action.FAIL, id="501-fail"),
        pytest.param(300, Action.FAIL, id="300-several-matches-fail"),
    ],
)
def test_default_table(status: int, action: Action) -> None:
    assert classify(httpx.Response(status)) is action


def test_vendor_table_extends_the_default() -> None:
    vendor = chain(None, by_status({404: Action.IGNORE}))
    assert classify(httpx.Response(404), vendor) is Action.IGNORE
    assert classify(httpx.Response(503), vendor) is Action.RETRY


def test_first_classifier_with_an_answer_wins() -> None:
    vendor = chain(lambda r: None, by_status({200: Action.RETRY}), by_status({200: Action.FAIL}))
    assert classify(httpx.Response(200), vendor) is Action.RETRY


NOW = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("12", 12.0, id="delta-seconds"),
        pytest.param("1.5", 1.5, id="fractional-seconds"),
        pytest.param("Mon, 01 Jan 2024 00:00:30 GMT", 30.0, id="http-date"),
        pytest.param("Sun, 31 Dec 2023 23:59:00 GMT", 0.0, id="http-date-in-the-past"),
        pytest.param("-5", 0.0, id="negative"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    ("method", "flag", "expected"),
    [
        pytest.param("GET", None, True, id="get"),
        pytest.param("put", None, True, id="put"),
        pytest.param("DELETE", None, True, id="delete"),
        pytest.param("PATCH", None, True, id="patch"),
        pytest.param("POST", None, False, id="post"),
        pytest.param("POST", True, True, id="post-marked-idempotent"),
        pytest.param("PATCH", False, False, id="patch-marked-not-idempotent"),
    ],
)
def test_idempotency(method: str, flag: bool | None, expected: bool) -> None:
    assert is_idempotent(method, flag) is expected


REQUEST = httpx.Request("POST", "https://api.example.test/x")
GOT_503 = RetryableResponse(Action.RETRY, httpx.Response(503), None)


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        pytest.param(RetryableResponse(Action.RETRY, httpx.Response(503), None), True, True, id="503-idempotent"),
        pytest.param(GOT_503, False, False, id="503-post"),
        pytest.param(httpx.ReadTimeout("t", request=REQUEST), True, True, id="timeout-idempotent"),
        pytest.param(httpx.ReadTimeout("t", request=REQUEST), False, False, id="timeout-post"),
        pytest.param(httpx.ConnectError("c", request=REQUEST), False, True, id="connect-error-never-sent"),
        pytest.param(httpx.UnsupportedProtocol("u", request=REQUEST), True, False, id="bad-url"),
        pytest.param(ValueError("v"), True, False, id="bug"),
    ],
)
def test_should_retry(exc: BaseException, idempotent: bool, expected: bool) -> None:
    assert should_retry(exc, idempotent=idempotent) is expected
