"""The client's retry loop, classification, deadline, stats and error text, against respx and ASGI apps."""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
import weakref
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest
import respx

from closeloop.connector import SystemSettings
from closeloop.http import (
    Action,
    AuthError,
    BearerAuth,
    BudgetExhausted,
    HttpClient,
    HttpError,
    RetryPolicy,
    TransientError,
    Unreachable,
)
from closeloop.model import Limits
from closeloop.testing.clock import FakeClock

MakeClient = Callable[..., HttpClient]


def limits(**overrides: Any) -> Limits:
    values: dict[str, Any] = {"max_write_batch": 100, "max_read_batch": 100, "page_size": 100}
    values |= {"requests_per_window": 10_000, "window_seconds": 1.0, "max_concurrency": 200}
    return Limits(**(values | overrides))


def ok(payload: object = None) -> httpx.Response:
    return httpx.Response(200, json=payload if payload is not None else {"ok": True})


@pytest.mark.parametrize(
    ("status", "calls", "error"),
    [
        pytest.param(500, 6, TransientError, id="500-retried-to-the-limit"),
        pytest.param(502, 6, TransientError, id="502-retried-to-the-limit"),
        pytest.param(503, 6, TransientError, id="503-retried-to-the-limit"),
        pytest.param(504, 6, TransientError, id="504-retried-to-the-limit"),
        pytest.param(429, 6, TransientError, id="429-retried-to-the-limit"),
        pytest.param(400, 1, HttpError, id="400-fails-at-once"),
        pytest.param(404, 1, HttpError, id="404-fails-at-once"),
        pytest.param(409, 1, HttpError, id="409-fails-at-once"),
        pytest.param(422, 1, HttpError, id="422-fails-at-once"),
        pytest.param(501, 1, HttpError, id="501-fails-at-once"),
        pytest.param(401, 1, AuthError, id="401-without-refreshable-auth-fails-at-once"),
    ],
)
async def test_retry_count_per_status(make_client: MakeClient, status: int, calls: int, error: type[Exception]) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/things").mock(return_value=httpx.Response(status, text="nope"))
        with pytest.raises(error) as caught:
            await client.request("GET", "/things")
    assert route.call_count == calls
    assert client.stats.snapshot().retries == calls - 1
    if isinstance(caught.value, TransientError):
        assert caught.value.status == status
        assert caught.value.attempts == calls


async def test_success_statuses_return_the_response(make_client: MakeClient) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.post("/batch").mock(return_value=httpx.Response(207, json={"numErrors": 1}))
        response = await client.request("POST", "/batch", json={"inputs": []})
    assert response.status_code == 207


async def test_429_503_timeout_200_succeeds_after_three_retries(make_client: MakeClient) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/contacts").mock(
            side_effect=[
                httpx.Response(429),
                httpx.Response(503),
                httpx.ReadTimeout("slow"),
                ok({"results": [1]}),
            ]
        )
        assert await client.get_json("/contacts") == {"results": [1]}
    assert route.call_count == 4
    snapshot = client.stats.snapshot()
    assert snapshot.retries == 3
    assert snapshot.rate_limited == 1
    assert snapshot.errors == 0


async def test_retry_after_seconds_is_waited(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.get("/x").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), ok()])
        await client.request("GET", "/x")
    assert clock.sleeps == [7.0]


async def test_retry_after_http_date_is_waited(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client()
    when = format_datetime(clock() + timedelta(seconds=30), usegmt=True)
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.get("/x").mock(side_effect=[httpx.Response(503, headers={"Retry-After": when}), ok()])
        await client.request("GET", "/x")
    assert clock.sleeps == [30.0]


async def test_retry_after_is_capped(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(retry=RetryPolicy(retry_after_cap=60))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.get("/x").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "86400"}), ok()])
        await client.request("GET", "/x")
    assert clock.sleeps == [60.0]


async def test_backoff_without_retry_after_is_full_jitter(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(retry=RetryPolicy(base_delay=1.0, max_delay=4.0))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.get("/x").mock(return_value=httpx.Response(503))
        with pytest.raises(TransientError):
            await client.request("GET", "/x")
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(clock.sleeps) == len(ceilings)
    assert all(0 <= slept <= ceiling for slept, ceiling in zip(clock.sleeps, ceilings, strict=True))


async def test_total_retry_time_is_bounded(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(retry=RetryPolicy(attempts=100, max_elapsed=30))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/x").mock(return_value=httpx.Response(503, headers={"Retry-After": "10"}))
        with pytest.raises(TransientError):
            await client.request("GET", "/x")
    assert route.call_count == 4  # at 0, 10, 20 and 30 s of fake time; then the 30 s budget is spent


async def test_post_create_is_not_retried_on_503(make_client: MakeClient) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.post("/contacts").mock(return_value=httpx.Response(503))
        with pytest.raises(TransientError) as caught:
            await client.post_json("/contacts", {"email": "a@example.com"})
    assert route.call_count == 1
    assert caught.value.may_have_applied


async def test_post_create_is_not_retried_after_a_timeout(make_client: MakeClient) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.post("/contacts").mock(side_effect=httpx.ReadTimeout("lost"))
        with pytest.raises(TransientError) as caught:
            await client.post_json("/contacts", {"email": "a@example.com"})
    assert route.call_count == 1
    assert caught.value.may_have_applied


async def test_post_create_is_retried_when_the_connection_never_opened(make_client: MakeClient) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.post("/contacts").mock(side_effect=[httpx.ConnectError("refused"), ok()])
        await client.post_json("/contacts", {"email": "a@example.com"})
    assert route.call_count == 2


async def test_upsert_marked_idempotent_is_retried_on_503(make_client: MakeClient) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.post("/contacts/upsert").mock(side_effect=[httpx.Response(503), ok()])
        await client.post_json("/contacts/upsert", {"inputs": []}, idempotent=True)
    assert route.call_count == 2


async def test_unreachable_host_raises_unreachable_after_retries(make_client: MakeClient) -> None:
    client = make_client()
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/x").mock(side_effect=httpx.ConnectError("Name or service not known"))
        with pytest.raises(Unreachable) as caught:
            await client.request("GET", "/x")
    assert route.call_count == 6
    assert caught.value.attempts == 6


def body_error_classifier(response: httpx.Response) -> Action | None:
    """A vendor that reports throttling as an error code inside a 200 body."""
    if response.status_code != 200:
        return None
    codes = {e["code"] for e in response.json().get("errors", [])}
    if codes & {"606", "615"}:
        return Action.RATE_LIMITED
    if codes & {"604", "608"}:
        return Action.RETRY
    if "607" in codes:
        raise BudgetExhausted("daily quota spent")
    return None


async def test_vendor_classifier_turns_a_200_body_error_into_a_retry(make_client: MakeClient) -> None:
    client = make_client(classifier=body_error_classifier)
    throttled = httpx.Response(200, json={"success": False, "errors": [{"code": "606", "message": "rate"}]})
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/leads.json").mock(side_effect=[throttled, ok({"success": True})])
        assert await client.get_json("/leads.json") == {"success": True}
    assert route.call_count == 2
    assert client.stats.snapshot().rate_limited == 1


async def test_vendor_quota_signal_raises_budget_exhausted_and_stops_calls(make_client: MakeClient) -> None:
    client = make_client(classifier=body_error_classifier)
    spent = httpx.Response(200, json={"success": False, "errors": [{"code": "607"}]})
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/leads.json").mock(return_value=spent)
        with pytest.raises(BudgetExhausted):
            await client.get_json("/leads.json")
        with pytest.raises(BudgetExhausted):
            await client.get_json("/leads.json")
    assert route.call_count == 1


async def test_deadline_expires_against_a_slow_in_process_app(make_client: MakeClient) -> None:
    started = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    client = make_client(
        settings=SystemSettings(timeout_seconds=0.05),
        retry=RetryPolicy(attempts=2),
        transport=httpx.ASGITransport(app=slow_app),
    )
    loop = asyncio.get_running_loop()
    begun = loop.time()
    with pytest.raises(TransientError) as caught:
        await client.request("GET", "/slow")
    assert started.is_set()
    assert caught.value.attempts == 2
    assert "ReadTimeout" in str(caught.value)
    assert loop.time() - begun < 5


async def test_stats_count_calls_per_endpoint_and_report_each_response(make_client: MakeClient) -> None:
    seen: list[tuple[str, int]] = []
    client = make_client(on_response=lambda system, response: seen.append((system, response.status_code)))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        contact = mock.get(url__regex=r"/crm/v3/objects/contacts/\d+")
        contact.mock(side_effect=[httpx.Response(503), ok(), ok()])
        mock.post("/search").mock(return_value=ok())
        await client.get_json("/crm/v3/objects/contacts/101")
        await client.get_json("/crm/v3/objects/contacts/202")
        await client.post_json("/search", {}, idempotent=True, endpoint="search")
    snapshot = client.stats.snapshot()
    assert snapshot.calls == {"GET /crm/v3/objects/contacts/{id}": 3, "POST search": 1}
    assert snapshot.retries == 1
    assert seen == [("crm", 503), ("crm", 200), ("crm", 200), ("crm", 200)]
    assert json.loads(json.dumps(snapshot.as_dict()))["calls"]["POST search"] == 1


async def test_settings_override_the_vendor_limits(make_client: MakeClient) -> None:
    settings = SystemSettings(requests_per_window=5, window_seconds=2, daily_budget=50, budget_reserve=0.2)
    client = make_client(settings=settings, system_limits=limits(daily_budget=1_000_000))
    window = client.limiter.window("default")
    assert (window.requests, window.seconds) == (5, 2)
    assert client.limiter.budget.usable == 40


async def test_default_headers_and_bearer_auth_are_sent(make_client: MakeClient) -> None:
    auth = BearerAuth("static-token-123", scheme="Custom-oauthtoken")
    client = make_client(auth=auth, headers={"X-App": "cl"})
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/me").mock(return_value=ok())
        await client.request("GET", "/me")
    sent = route.calls.last.request.headers
    assert sent["Authorization"] == "Custom-oauthtoken static-token-123"
    assert sent["X-App"] == "cl"


async def test_failure_errors_carry_status_body_and_response_but_no_secret(make_client: MakeClient) -> None:
    client = make_client(auth=BearerAuth("very-secret-static-token"))
    echo = '{"message": "bad", "access_token": "leaked-token-value", "a": "Bearer very-secret-static-token"}'
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.patch("/records/1").mock(return_value=httpx.Response(400, text=echo))
        with pytest.raises(HttpError) as caught:
            await client.request("PATCH", "/records/1", json={"a": 1})
    error = caught.value
    assert error.status == 400
    assert error.response is not None
    assert error.response.json()["message"] == "bad"
    for text in (str(error), error.body_text, repr(error)):
        assert "leaked-token-value" not in text
        assert "very-secret-static-token" not in text


async def test_a_response_is_freed_by_reference_counting_once_its_caller_lets_go(make_client: MakeClient) -> None:
    """httpx binds a response's stream to the response, a reference cycle: left so, every page read waited, body and
    all, for the cycle collector, whose passes a sync makes rare. The client hands out responses outside any cycle."""
    body = b'{"results": [' + b",".join(b'{"id": "%d"}' % i for i in range(1000)) + b"]}"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    client = make_client(transport=httpx.ASGITransport(app=app))
    gc.collect()
    gc.disable()
    try:
        response = await client.request("GET", "/page")
        assert response.content == body
        assert await response.aread() == body  # still readable, as before
        gone = weakref.ref(response)
        del response
        assert gone() is None
        assert await client.get_json("/page") == orjson.loads(body)
    finally:
        gc.enable()


def test_clients_share_one_tls_context_that_verifies_certificates(make_client: MakeClient) -> None:
    """The CA bundle is loaded once per process, not once per client; verification stays on."""
    first, second = make_client(), make_client()
    contexts = {id(c._client._transport._pool._ssl_context) for c in (first, second)}  # type: ignore[attr-defined]
    assert len(contexts) == 1
    shared = first._client._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert shared.verify_mode is ssl.CERT_REQUIRED
    assert shared.check_hostname
