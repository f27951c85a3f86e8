"""Webhook verification (G14): wrong, missing, stale or tampered requests are refused and schedule nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from closeloop.daemon.endpoints import DaemonView, build_app, installed_webhooks
from closeloop.daemon.metrics import DaemonMetrics
from closeloop.daemon.readiness import Readiness
from closeloop.webhooks import (
    TOKEN_HEADER,
    Verdict,
    WebhookRequest,
    body_token,
    secret_variable,
    shared_token,
    url_or_header_token,
    verify,
)

WEBHOOKS = installed_webhooks()
hmac_v3 = WEBHOOKS["hubspot"].verify  # HubSpot's signature v3, as its connector plugin declares it

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = SecretStr("app-secret-123")
URI = "https://sync.example.com/webhooks/hubspot"
BODY = b'[{"objectId":1,"subscriptionType":"contact.propertyChange"}]'


def sign(method: str, uri: str, body: bytes, stamp: str) -> str:
    """HubSpot's v3 signature, computed the way HubSpot documents it."""
    message = method.encode() + uri.encode() + body + stamp.encode()
    return base64.b64encode(hmac.new(SECRET.get_secret_value().encode(), message, hashlib.sha256).digest()).decode()


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def hubspot_request(
    *, age: timedelta = timedelta(), signature: str | None = None, body: bytes = BODY
) -> WebhookRequest:
    stamp = ms(NOW - age)
    headers = {"x-hubspot-request-timestamp": stamp}
    headers["x-hubspot-signature-v3"] = signature if signature is not None else sign("POST", URI, body, stamp)
    return WebhookRequest("POST", URI, headers, {}, body)


def test_hmac_v3_accepts_a_fresh_correct_signature() -> None:
    assert hmac_v3(hubspot_request(age=timedelta(seconds=30)), SECRET, NOW).ok


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        pytest.param(hubspot_request(signature="bm90IGl0"), "bad signature", id="wrong-signature"),
        pytest.param(hubspot_request(signature=""), "no signature or timestamp", id="missing-signature"),
        pytest.param(hubspot_request(age=timedelta(minutes=6)), "stale timestamp", id="six-minutes-old"),
        pytest.param(hubspot_request(age=-timedelta(minutes=6)), "stale timestamp", id="six-minutes-ahead"),
        pytest.param(
            WebhookRequest("POST", URI, hubspot_request().headers, {}, BODY + b" "), "bad signature", id="tampered-body"
        ),
        pytest.param(
            WebhookRequest("POST", URI + "?x=1", hubspot_request().headers, {}, BODY), "bad signature", id="other-uri"
        ),
    ],
)
def test_hmac_v3_refuses(request_: WebhookRequest, reason: str) -> None:
    verdict = hmac_v3(request_, SECRET, NOW)
    assert not verdict.ok
    assert verdict.reason == reason


def test_hmac_v3_compares_the_uri_with_hubspot_decoded_characters() -> None:
    stamp = ms(NOW)
    signed_uri = "https://sync.example.com/webhooks/hubspot?next=a:b@c"
    headers = {"x-hubspot-request-timestamp": stamp, "x-hubspot-signature-v3": sign("POST", signed_uri, BODY, stamp)}
    seen = "https://sync.example.com/webhooks/hubspot?next=a%3Ab%40c"
    assert hmac_v3(WebhookRequest("POST", seen, headers, {}, BODY), SECRET, NOW).ok


@pytest.mark.parametrize(
    ("given", "ok"),
    [("s3cret", True), ("s3cret ", False), ("S3CRET", False), ("", False), (None, False)],
    ids=["equal", "trailing-space", "case", "empty", "missing"],
)
def test_shared_token(given: str | None, ok: bool) -> None:
    assert shared_token(given, SecretStr("s3cret")).ok is ok


def test_body_token_reads_the_channel_token_from_json() -> None:
    good = WebhookRequest("POST", URI, {}, {}, json.dumps({"token": "s3cret", "ids": ["1"]}).encode())
    bad = WebhookRequest("POST", URI, {}, {}, b"token=s3cret")
    assert body_token(good, SecretStr("s3cret"), NOW).ok
    assert not body_token(bad, SecretStr("s3cret"), NOW).ok


def test_url_or_header_token_takes_either() -> None:
    in_url = WebhookRequest("POST", URI, {}, {"token": "s3cret"}, b"")
    in_header = WebhookRequest("POST", URI, {TOKEN_HEADER: "s3cret"}, {}, b"")
    assert url_or_header_token(in_url, SecretStr("s3cret"), NOW).ok
    assert url_or_header_token(in_header, SecretStr("s3cret"), NOW).ok


def test_no_configured_secret_means_nothing_is_authentic() -> None:
    verdict = verify(WEBHOOKS["hubspot"], hubspot_request(), None, NOW)
    assert not verdict.ok
    assert "no secret" in verdict.reason
    assert secret_variable("hubspot") == "CLOSELOOP_WEBHOOK_HUBSPOT_SECRET"


class Recorder:
    """Stands in for the scheduler: records early-run requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, name: str, reason: str) -> bool:
        self.requests.append((name, reason))
        return name == "crm-marketing"


def client(recorder: Recorder, **secrets: str) -> httpx.AsyncClient:
    view = DaemonView(
        readiness=lambda: Readiness(ready=True),
        request_sync=recorder,
        connections_using=lambda connector: ["crm-marketing"] if connector in ("hubspot", "salesforce") else [],
        metrics=DaemonMetrics(),
        webhook_secrets={k: SecretStr(v) for k, v in secrets.items()},
        clock=lambda: NOW,
        webhooks=WEBHOOKS,
        public_url="https://sync.example.com",
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(view)), base_url="https://sync.example.com")


async def post_hubspot(http: httpx.AsyncClient, *, age: timedelta = timedelta(), signature: str | None = None) -> int:
    stamp = ms(NOW - age)
    headers = {
        "X-HubSpot-Request-Timestamp": stamp,
        "X-HubSpot-Signature-v3": signature if signature is not None else sign("POST", URI, BODY, stamp),
        "Content-Type": "application/json",
    }
    return (await http.post("/webhooks/hubspot", content=BODY, headers=headers)).status_code


@pytest.mark.parametrize(
    ("age", "signature"),
    [
        pytest.param(timedelta(), "d3Jvbmc=", id="wrong"),
        pytest.param(timedelta(), "", id="missing"),
        pytest.param(timedelta(minutes=6), None, id="six-minutes-old"),
    ],
)
async def test_bad_hubspot_webhook_gets_401_and_schedules_nothing(age: timedelta, signature: str | None) -> None:
    recorder = Recorder()
    async with client(recorder, hubspot="app-secret-123") as http:
        assert await post_hubspot(http, age=age, signature=signature) == 401
    assert recorder.requests == []


async def test_verified_hubspot_webhook_schedules_an_early_run_of_its_connections() -> None:
    recorder = Recorder()
    async with client(recorder, hubspot="app-secret-123") as http:
        assert await post_hubspot(http) == 200
    assert recorder.requests == [("crm-marketing", "webhook hubspot")]


async def test_duplicate_webhooks_only_ask_for_early_runs() -> None:
    recorder = Recorder()
    async with client(recorder, hubspot="app-secret-123") as http:
        assert await post_hubspot(http) == 200
        assert await post_hubspot(http) == 200
    # Each delivery is only a request; the scheduler folds them into one run (test_scheduler).
    assert {name for name, _ in recorder.requests} == {"crm-marketing"}


async def test_webhook_without_configured_secret_is_refused() -> None:
    recorder = Recorder()
    async with client(recorder) as http:
        assert await post_hubspot(http) == 401
    assert recorder.requests == []


async def test_salesforce_outbound_message_is_acknowledged_in_soap() -> None:
    recorder = Recorder()
    async with client(recorder, salesforce="sf-token") as http:
        refused = await http.post("/webhooks/salesforce?token=nope", content=b"<soap/>")
        answer = await http.post("/webhooks/salesforce?token=sf-token", content=b"<soap/>")
    assert refused.status_code == 401
    assert answer.status_code == 200
    assert "<Ack>true</Ack>" in answer.text
    assert recorder.requests == [("crm-marketing", "webhook salesforce")]


async def test_unknown_webhook_source_is_404() -> None:
    async with client(Recorder()) as http:
        assert (await http.post("/webhooks/nosuch", content=b"{}")).status_code == 404


async def test_oversized_webhook_body_is_refused_unread() -> None:
    async with client(Recorder(), marketo="m") as http:
        response = await http.post("/webhooks/marketo", content=b"x" * (2 << 20), headers={TOKEN_HEADER: "m"})
    assert response.status_code == 413


async def test_sync_endpoint_schedules_or_404s() -> None:
    recorder = Recorder()
    async with client(recorder) as http:
        assert (await http.post("/connections/crm-marketing/sync")).status_code == 202
        assert (await http.post("/connections/other/sync")).status_code == 404


DEEP_JSON = b"[" * 10_000 + b"]" * 10_000
DEEP_XML = b"<a>" * 10_000 + b"</a>" * 10_000
LAUGHS_XML = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b"<soapenv:Envelope>&b;</soapenv:Envelope>"
)


@pytest.mark.parametrize(
    ("connector", "body", "reason"),
    [
        pytest.param("zoho", DEEP_JSON, "body nests deeper than 32 levels", id="zoho-10000-nested-arrays"),
        pytest.param("zoho", b'{"a":' * 40 + b"1" + b"}" * 40, "body nests deeper than 32 levels", id="zoho-objects"),
        pytest.param(
            "zoho", b'{"token": "z", "ids": [1,', "body is not JSON (Expecting value at offset 25)", id="zoho-cut"
        ),
        pytest.param("zoho", b"token=z", "body is not JSON (Expecting value at offset 0)", id="zoho-form-encoded"),
        pytest.param("zoho", b'{"token": "\xff"}', "body is not UTF-8 (byte 0xff at offset 11)", id="zoho-not-utf8"),
        pytest.param("hubspot", DEEP_JSON, "body nests deeper than 32 levels", id="hubspot-deep"),
        pytest.param("hubspot", b"<events/>", "body is not JSON (Expecting value at offset 0)", id="hubspot-xml"),
        pytest.param("salesforce", DEEP_XML, "body nests deeper than 32 levels", id="salesforce-deep"),
        pytest.param("salesforce", LAUGHS_XML, "body declares a DTD; SOAP messages have none", id="salesforce-dtd"),
        pytest.param(
            "salesforce", b"<soap><a></soap>", "body is not XML (mismatched tag at line 1)", id="salesforce-broken"
        ),
    ],
)
async def test_a_body_that_cannot_be_parsed_gets_400_with_a_reason(connector: str, body: bytes, reason: str) -> None:
    recorder = Recorder()
    async with client(recorder, zoho="z", hubspot="app-secret-123", salesforce="sf-token") as http:
        answer = await http.post(f"/webhooks/{connector}?token=sf-token", content=body)
        metrics = (await http.get("/metrics")).text
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    assert recorder.requests == []
    assert f'closeloop_webhooks_total{{result="malformed",source="{connector}"}} 1.0' in metrics


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        pytest.param(
            b'{"token": "z", "ids": [[[[1]]]], "note": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
            True,
            id="brackets-in-text",
        ),
        pytest.param(b'{"token": "z", "note": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', True, id="escaped-quote"),
        pytest.param(b'{"token": "z", "x": ' + b"[" * 31 + b"]" * 31 + b"}", True, id="32-levels"),
        pytest.param(b'{"token": "z", "x": ' + b"[" * 32 + b"]" * 32 + b"}", False, id="33-levels"),
    ],
)
async def test_zoho_body_depth_counts_structure_not_text(body: bytes, ok: bool) -> None:
    recorder = Recorder()
    async with client(recorder, zoho="z") as http:
        answer = await http.post("/webhooks/zoho", content=body)
    assert answer.status_code == (200 if ok else 400), answer.text


def test_body_token_refuses_a_deep_body_without_a_traceback() -> None:
    verdict = body_token(WebhookRequest("POST", URI, {}, {}, DEEP_JSON), SecretStr("s3cret"), NOW)
    assert verdict == Verdict(ok=False, reason="body nests deeper than 32 levels")
