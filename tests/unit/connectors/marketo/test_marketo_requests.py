"""Request shapes of the Marketo connector and one test per Marketo quirk it handles (respx, no sandbox)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from closeloop_connectors.marketo.adapter import MarketoConnector

from closeloop.http import BudgetExhausted, TransientError
from closeloop.model import Cursor, WriteOp, WriteRequest, WriteStatus, parse_utc


def ok(result: list[Any] | None = None, **extra: Any) -> httpx.Response:
    """A successful Marketo answer."""
    body: dict[str, Any] = {"requestId": "a1b2#123", "success": True, **extra}
    if result is not None:
        body["result"] = result
    return httpx.Response(200, json=body)


def refused(code: str, message: str) -> httpx.Response:
    """A Marketo refusal: HTTP 200, success false."""
    return httpx.Response(
        200, json={"requestId": "a1b2#124", "success": False, "errors": [{"code": code, "message": message}]}
    )


def lead(lead_id: int, updated: str = "2026-02-01T10:00:00Z", **fields: Any) -> dict[str, Any]:
    """A lead as leads.json returns it."""
    return {"id": lead_id, "updatedAt": updated, "email": f"p{lead_id}@example.org", **fields}


def upsert(i: int, **extra: object) -> WriteRequest:
    return WriteRequest(f"r{i}", WriteOp.UPSERT, {"email": f"p{i}@example.org", **extra}, upsert_key="email")


async def test_access_token_not_in_query_string(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector, client_secret: str
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(return_value=ok([lead(1001)]))
    await connector.read("leads", ["1001"])
    sent = leads.calls.last.request
    assert sent.headers["Authorization"] == "Bearer token-1:ab"
    assert "access_token" not in str(sent.url)
    # The client secret travels in the identity call's form body, never in a URL.
    token_call = identity.calls.last.request
    assert client_secret not in str(token_call.url)
    assert parse_qs(token_call.content.decode())["client_secret"] == [client_secret]
    assert parse_qs(token_call.content.decode())["grant_type"] == ["client_credentials"]


async def test_read_by_id_request_shape(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(return_value=ok([lead(1001), lead(1002)]))
    records = await connector.read("leads", ["1001", "1002"])
    params = leads.calls.last.request.url.params
    assert params["filterType"] == "id"
    assert params["filterValues"] == "1001,1002"
    assert params["fields"] == "id,updatedAt,email,firstName"
    assert params["batchSize"] == "300"
    assert [(r.id, r.modified_at) for r in records] == [
        ("1001", parse_utc("2026-02-01T10:00:00Z")),
        ("1002", parse_utc("2026-02-01T10:00:00Z")),
    ]


async def test_read_follows_next_page_token(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(
        side_effect=[ok([lead(1001)], nextPageToken="PAGE2"), ok([lead(1002)])]
    )
    records = await connector.read("leads", ["1001", "1002"])
    assert [r.id for r in records] == ["1001", "1002"]
    assert leads.calls[1].request.url.params["nextPageToken"] == "PAGE2"


async def test_filter_values_over_300_split(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(return_value=ok([]))
    await connector.read("leads", [str(i) for i in range(1, 651)])
    sizes = [len(c.request.url.params["filterValues"].split(",")) for c in leads.calls]
    assert sizes == [300, 300, 50]


async def test_long_email_filter_goes_as_post_with_method_get(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    search = mock.post("/rest/v1/leads.json", params={"_method": "GET"}).mock(return_value=ok([]))
    emails = [f"someone.with.a.long.address.{i}@example-company.org" for i in range(300)]
    await connector.search("leads", "email", emails)
    form = parse_qs(search.calls.last.request.content.decode())
    assert form["filterType"] == ["email"]
    assert len(form["filterValues"][0].split(",")) == 300


async def test_search_by_email_deduplicates_case(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(return_value=ok([lead(1001)]))
    await connector.search("leads", "email", ["P1001@Example.org", "p1001@example.org"])
    assert leads.calls.last.request.url.params["filterValues"] == "p1001@example.org"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("606", "Max rate limit '100' exceeded with in '20' secs"),
        ("615", "Concurrent access limit reached"),
        ("604", "Request timed out"),
        ("608", "API Temporarily Unavailable"),
        ("611", "System error"),
    ],
    ids=["606-rate", "615-concurrency", "604-timeout", "608-unavailable", "611-system-error"],
)
async def test_transient_codes_inside_200_are_retried(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector, code: str, message: str
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(side_effect=[refused(code, message), ok([lead(1001)])])
    records = await connector.read("leads", ["1001"])
    assert [r.id for r in records] == ["1001"]
    assert leads.call_count == 2


async def test_error_606_inside_200_is_retried(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    refusal = refused("606", "Max rate limit '100' exceeded with in '20' secs")
    leads = mock.get("/rest/v1/leads.json").mock(side_effect=[refusal, refusal, ok([lead(1001)])])
    assert [r.id for r in await connector.read("leads", ["1001"])] == ["1001"]
    assert leads.call_count == 3
    assert connector.api.http.stats.rate_limited == 2


async def test_error_606_that_persists_raises_transient_error(
    mock: respx.MockRouter, identity: respx.Route, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector(max_attempts=3)
    leads = mock.get("/rest/v1/leads.json").mock(return_value=refused("606", "Max rate limit"))
    with pytest.raises(TransientError):
        await connector.read("leads", ["1001"])
    assert leads.call_count == 3


async def test_error_602_reauthenticates(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(side_effect=[refused("602", "Access token expired"), ok([lead(1001)])])
    assert [r.id for r in await connector.read("leads", ["1001"])] == ["1001"]
    assert identity.call_count == 2
    assert [c.request.headers["Authorization"] for c in leads.calls] == ["Bearer token-1:ab", "Bearer token-2:ab"]


async def test_error_601_reauthenticates_once_then_fails(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    mock.get("/rest/v1/leads.json").mock(return_value=refused("601", "Access token invalid"))
    with pytest.raises(Exception, match="601"):
        await connector.read("leads", ["1001"])
    assert identity.call_count == 2


async def test_error_607_daily_quota_stops(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    leads = mock.get("/rest/v1/leads.json").mock(return_value=refused("607", "Daily quota reached"))
    with pytest.raises(BudgetExhausted):
        await connector.read("leads", ["1001"])
    # The budget is marked spent: the next call is refused without reaching Marketo.
    with pytest.raises(BudgetExhausted):
        await connector.read("leads", ["1002"])
    assert leads.call_count == 1


async def test_upsert_uses_create_or_update_with_lookup_field(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    sync = mock.post("/rest/v1/leads.json").mock(
        return_value=ok([{"id": 1001, "status": "updated"}, {"id": 1002, "status": "created"}])
    )
    results = await connector.write("leads", [upsert(1), upsert(2)])
    body = json.loads(sync.calls.last.request.content)
    assert body == {
        "action": "createOrUpdate",
        "lookupField": "email",
        "input": [{"email": "p1@example.org"}, {"email": "p2@example.org"}],
    }
    assert [(r.ref, r.status, r.native_id) for r in results] == [
        ("r1", WriteStatus.UPDATED, "1001"),
        ("r2", WriteStatus.CREATED, "1002"),
    ]


async def test_update_uses_update_only_by_id(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    sync = mock.post("/rest/v1/leads.json").mock(return_value=ok([{"id": 1001, "status": "updated"}]))
    request = WriteRequest("u1", WriteOp.UPDATE, {"closeloopRevenue": 1200.5}, native_id="1001")
    results = await connector.write("leads", [request])
    body = json.loads(sync.calls.last.request.content)
    assert body == {"action": "updateOnly", "lookupField": "id", "input": [{"closeloopRevenue": 1200.5, "id": 1001}]}
    assert results[0].status is WriteStatus.UPDATED


async def test_skipped_record_reasons_become_quarantine_reasons(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    mock.post("/rest/v1/leads.json").mock(
        return_value=ok(
            [
                {"id": 1001, "status": "updated"},
                {"status": "skipped", "reasons": [{"code": "1006", "message": "Field 'fooBar' not found"}]},
                {"status": "skipped", "reasons": [{"code": "1003", "message": "Invalid value 'x' for field 'phone'"}]},
                {"status": "skipped", "reasons": [{"code": "1007", "message": "Multiple lead match lookup criteria"}]},
            ]
        )
    )
    results = await connector.write("leads", [upsert(i) for i in range(4)])
    assert [r.ref for r in results] == ["r0", "r1", "r2", "r3"]
    assert results[0].ok
    failures = [(r.error.code, r.error.fields, r.error.retryable) for r in results[1:] if r.error]
    assert failures == [("1006", ("fooBar",), False), ("1003", ("phone",), False), ("1007", (), False)]
    assert results[3].error is not None
    assert results[3].error.message == "Multiple lead match lookup criteria"


async def test_batch_300_split(mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["input"]
        return ok([{"id": 5000 + int(r["email"][1:].split("@")[0]), "status": "created"} for r in records])

    sync = mock.post("/rest/v1/leads.json").mock(side_effect=answer)
    batch = [upsert(i) for i in range(650)]
    results = await connector.write("leads", batch)
    assert [len(json.loads(c.request.content)["input"]) for c in sync.calls] == [300, 300, 50]
    assert [r.ref for r in results] == [w.ref for w in batch]
    assert [r.native_id for r in results] == [str(5000 + i) for i in range(650)]


async def test_mixed_operations_keep_input_order(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        status = "created" if body["action"] == "createOrUpdate" else "updated"
        return ok([{"id": 7000 + n, "status": status} for n, _ in enumerate(body["input"])])

    mock.post("/rest/v1/leads.json").mock(side_effect=answer)
    batch = [upsert(1), WriteRequest("u", WriteOp.UPDATE, {"firstName": "A"}, native_id="1001"), upsert(2)]
    results = await connector.write("leads", batch)
    assert [(r.ref, r.status) for r in results] == [
        ("r1", WriteStatus.CREATED),
        ("u", WriteStatus.UPDATED),
        ("r2", WriteStatus.CREATED),
    ]


async def test_whole_call_refusal_fails_every_record(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    mock.post("/rest/v1/leads.json").mock(return_value=refused("1003", "Invalid lookupField 'fax'"))
    results = await connector.write("leads", [upsert(1), upsert(2)])
    assert [(r.ref, r.error.code if r.error else None) for r in results] == [("r1", "1003"), ("r2", "1003")]


async def test_empty_activity_page_has_no_result_array(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    mock.get("/rest/v1/activities/pagingtoken.json").mock(return_value=ok(nextPageToken="T0"))
    empty = ok(nextPageToken="T1", moreResult=False)  # Marketo leaves "result" out when nothing matched
    changes = mock.get("/rest/v1/activities/leadchanges.json").mock(return_value=empty)
    mock.get("/rest/v1/activities/deletedleads.json").mock(return_value=empty)
    mock.get("/rest/v1/activities.json").mock(return_value=empty)
    pages = [p async for p in connector.read_changes("leads", Cursor(parse_utc("2026-02-01T00:00:00Z")))]
    assert pages == []
    params = changes.calls.last.request.url.params
    assert params["nextPageToken"] == "T0"
    assert params["fields"] == "email,firstName"


async def test_incremental_read_request_shapes(
    mock: respx.MockRouter, identity: respx.Route, connector: MarketoConnector
) -> None:
    token = mock.get("/rest/v1/activities/pagingtoken.json").mock(return_value=ok(nextPageToken="T0"))
    change = {"id": 9, "leadId": 1001, "activityDate": "2026-02-01T10:00:00Z", "activityTypeId": 13, "attributes": []}
    mock.get("/rest/v1/activities/leadchanges.json").mock(return_value=ok([change], nextPageToken="T1"))
    deleted = {"id": 10, "leadId": 1005, "activityDate": "2026-02-01T10:00:05Z", "activityTypeId": 37, "attributes": []}
    mock.get("/rest/v1/activities/deletedleads.json").mock(return_value=ok([deleted], nextPageToken="T2"))
    merge = {
        "id": 11,
        "leadId": 1002,
        "activityDate": "2026-02-01T10:00:07Z",
        "activityTypeId": 32,
        "attributes": [{"name": "Merge ids", "value": "[1003]"}],
    }
    merges = mock.get("/rest/v1/activities.json").mock(return_value=ok([merge], nextPageToken="T3"))
    leads = mock.get("/rest/v1/leads.json").mock(return_value=ok([lead(1001), lead(1002, "2026-02-01T10:00:07Z")]))
    since = Cursor(parse_utc("2026-02-01T09:59:59.500Z"), "999")
    records = [r async for p in connector.read_changes("leads", since) for r in p.records]
    assert token.calls.last.request.url.params["sinceDatetime"] == "2026-02-01T09:59:59Z"
    assert merges.calls.last.request.url.params["activityTypeIds"] == "32"
    assert leads.calls.last.request.url.params["filterType"] == "id"
    assert [(r.id, r.deleted, r.merged_into) for r in records] == [
        ("1001", False, None),
        ("1005", True, None),
        ("1002", False, None),
        ("1003", True, "1002"),
    ]


def test_rate_window_padded_for_arrival_jitter(make_connector: Callable[..., MarketoConnector]) -> None:
    default = make_connector()
    tuned = make_connector(requests_per_window=8, window_seconds=0.5)
    assert default.api.http.limiter.window("default").seconds == pytest.approx(20.4)
    assert default.api.http.limiter.window("default").requests == 100
    assert tuned.api.http.limiter.window("default").seconds == pytest.approx(0.55)


def test_limits_are_marketos(connector: MarketoConnector) -> None:
    limits = connector.limits("leads")
    assert (limits.max_write_batch, limits.max_read_batch, limits.max_concurrency) == (300, 300, 10)
    assert (limits.requests_per_window, limits.window_seconds, limits.daily_budget) == (100, 20.0, 50_000)
