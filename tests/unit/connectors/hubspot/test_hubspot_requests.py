"""Request shapes of the HubSpot connector, checked with respx (every registered route must be called)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from closeloop_connectors.hubspot import HubSpotConnector, HubSpotSettings, create
from closeloop_connectors.hubspot.schema import TOUCH_PROPERTIES

from closeloop.connector import ConnectorContext
from closeloop.http import BudgetExhausted, redact
from closeloop.model import Association, Cursor, FieldType, WriteOp, WriteRequest, WriteStatus

API = "https://api.hubapi.com"
PROPS = {"contacts": ["email", "firstname", "lastmodifieddate"], "deals": ["dealname", "hs_lastmodifieddate"]}


def settings(**overrides: Any) -> HubSpotSettings:
    values: dict[str, Any] = {
        "access_token": "pat-na1-unit-test",
        "properties": PROPS,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.02,
    }
    return HubSpotSettings(**{**values, **overrides})


@pytest.fixture
async def connector() -> AsyncIterator[HubSpotConnector]:
    conn = create(ConnectorContext("hubspot-unit", settings()))
    yield conn
    await conn.aclose()


def contact(cid: str, stamp: str, email: str = "a@example.org") -> dict[str, Any]:
    props = {"email": email, "firstname": "A", "lastmodifieddate": stamp, "hs_object_id": cid}
    return {"id": cid, "properties": props, "createdAt": stamp, "updatedAt": stamp, "archived": False}


def sent(route: respx.Route, index: int = -1) -> Any:
    return json.loads(route.calls[index].request.content)


@respx.mock(base_url=API, assert_all_called=True)
async def test_incremental_read_finishes_the_cursor_instant_then_searches_after_it(
    respx_mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    archived = respx_mock.get("/crm/v3/objects/contacts", params={"archived": "true"}).respond(json={"results": []})
    search = respx_mock.post("/crm/v3/objects/contacts/search").mock(
        side_effect=[
            httpx.Response(200, json={"total": 1, "results": [contact("17", "2026-03-01T00:00:00.000Z")]}),
            httpx.Response(200, json={"total": 1, "results": [contact("9", "2026-03-02T00:00:00.000Z")]}),
        ]
    )
    since = Cursor(datetime(2026, 3, 1, tzinfo=UTC), "12")
    pages = [page async for page in connector.read_changes("contacts", since)]

    assert [r.id for p in pages for r in p.records] == ["17", "9"]
    assert archived.calls[0].request.url.params["limit"] == "100"
    instant, window = sent(search, 0), sent(search, 1)
    assert instant == {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "EQ", "value": "1772323200000"},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": "12"},
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": [*PROPS["contacts"], *TOUCH_PROPERTIES],  # touchpoints ride along on the stream
        "limit": 200,
    }
    assert window["filterGroups"] == [
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "1772323200000"}]}
    ]
    assert window["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert "after" not in window, "the stream never pages by offset (the 10,000 cap applies to offsets)"


@respx.mock(base_url=API, assert_all_called=True)
async def test_merge_winners_page_by_id_never_by_offset(
    respx_mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    loser = {**contact("5", "2026-03-01T00:00:00.000Z"), "archived": True, "archivedAt": "2026-03-01T00:00:00.000Z"}
    respx_mock.get("/crm/v3/objects/contacts", params={"archived": "true"}).respond(json={"results": [loser]})
    merge_searches: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        filters = [f for g in body["filterGroups"] for f in g["filters"]]
        if not any(f["propertyName"] == "hs_merged_object_ids" for f in filters):
            return httpx.Response(200, json={"total": 0, "results": []})
        merge_searches.append(body)
        if len(merge_searches) == 1:  # a full page: more may follow
            winners = [{"id": "7", "properties": {"hs_merged_object_ids": "3"}},
                       {"id": "9", "properties": {"hs_merged_object_ids": "5;6"}}]  # fmt: skip
            return httpx.Response(200, json={"total": 3, "results": winners, "paging": {"next": {"after": "2"}}})
        return httpx.Response(200, json={"total": 3, "results": []})

    respx_mock.post("/crm/v3/objects/contacts/search").mock(side_effect=answer)
    records = [r async for page in connector.read_changes("contacts", None) for r in page.records]

    assert [(r.id, r.deleted, r.merged_into) for r in records] == [("5", True, "9")]
    (next_page,) = merge_searches[1]["filterGroups"]
    assert "after" not in merge_searches[1], "the first sweep may pass search's 10,000 cap: pages go by id"
    assert {"propertyName": "hs_object_id", "operator": "GT", "value": "9"} in next_page["filters"]


@respx.mock(base_url=API, assert_all_called=True)
async def test_upsert_by_email_sends_id_property_and_trace_ids(
    respx_mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        results = [
            {**contact(str(100 + int(i["objectWriteTraceId"])), "2026-03-01T00:00:00.000Z", i["id"]),
             "objectWriteTraceId": i["objectWriteTraceId"], "new": i["objectWriteTraceId"] == "1"}
            for i in reversed(inputs)  # HubSpot does not keep input order
        ]  # fmt: skip
        return httpx.Response(200, json={"status": "COMPLETE", "results": results})

    route = respx_mock.post("/crm/v3/objects/contacts/batch/upsert").mock(side_effect=answer)
    batch = [
        WriteRequest("a", WriteOp.UPSERT, {"email": "a@example.org", "firstname": "A"}, upsert_key="email"),
        WriteRequest("b", WriteOp.UPSERT, {"email": "b@example.org", "closeloop_revenue": 12.5}, upsert_key="email"),
    ]
    results = await connector.write("contacts", batch)

    assert sent(route)["inputs"] == [
        {"id": "a@example.org", "idProperty": "email", "properties": {"firstname": "A"}, "objectWriteTraceId": "0"},
        {"id": "b@example.org", "idProperty": "email", "properties": {"closeloop_revenue": "12.5"},
         "objectWriteTraceId": "1"},
    ]  # fmt: skip
    assert [(r.ref, r.status, r.native_id) for r in results] == [
        ("a", WriteStatus.UPDATED, "100"),
        ("b", WriteStatus.CREATED, "101"),
    ]


@respx.mock(base_url=API, assert_all_called=True)
async def test_batch_207_maps_errors_by_trace_id(respx_mock: respx.MockRouter, connector: HubSpotConnector) -> None:
    invalid = [{"isValid": False, "message": "bad", "error": "INVALID_OPTION", "name": "dealstage"}]
    body = {
        "status": "COMPLETE",
        "results": [
            {**contact("7", "2026-03-01T00:00:00.000Z"), "objectWriteTraceId": "2"},
            {**contact("5", "2026-03-01T00:00:00.000Z"), "objectWriteTraceId": "0"},
        ],
        "numErrors": 2,
        "errors": [
            {"status": "error", "category": "VALIDATION_ERROR",
             "message": f"Property values were not valid: {json.dumps(invalid)}",
             "context": {"objectWriteTraceId": ["1"]}, "errors": [], "links": {}},
            {"status": "error", "category": "INTERNAL_ERROR", "message": "try again",
             "context": {"objectWriteTraceId": ["3"]}, "errors": [], "links": {}},
        ],
    }  # fmt: skip
    route = respx_mock.post("/crm/v3/objects/deals/batch/create").respond(207, json=body)
    batch = [WriteRequest(f"d{i}", WriteOp.CREATE, {"dealname": f"D{i}"}) for i in range(4)]
    results = await connector.write("deals", batch)

    assert [i["objectWriteTraceId"] for i in sent(route)["inputs"]] == ["0", "1", "2", "3"]
    assert [(r.ref, r.status, r.native_id) for r in results] == [
        ("d0", WriteStatus.CREATED, "5"),
        ("d1", WriteStatus.FAILED, None),
        ("d2", WriteStatus.CREATED, "7"),
        ("d3", WriteStatus.FAILED, None),
    ]
    bad, transient = results[1].error, results[3].error
    assert bad is not None
    assert (bad.code, bad.retryable, bad.fields) == ("VALIDATION_ERROR", False, ("dealstage",))
    assert transient is not None
    assert transient.retryable


@respx.mock(base_url=API, assert_all_called=True)
async def test_whole_batch_refused_for_one_record_is_halved(
    respx_mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    invalid = [{"isValid": False, "message": "bad", "error": "INVALID_EMAIL", "name": "email"}]

    def answer(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        if any(i["id"] == "2" for i in inputs):
            message = f"Property values were not valid: {json.dumps(invalid)}"
            return httpx.Response(400, json={"status": "error", "message": message, "category": "VALIDATION_ERROR"})
        results = [{**contact(i["id"], "2026-03-01T00:00:00.000Z"), "objectWriteTraceId": i["objectWriteTraceId"]}
                   for i in inputs]  # fmt: skip
        return httpx.Response(200, json={"status": "COMPLETE", "results": results})

    route = respx_mock.post("/crm/v3/objects/contacts/batch/update").mock(side_effect=answer)
    batch = [WriteRequest(f"r{i}", WriteOp.UPDATE, {"email": "x"}, native_id=str(i)) for i in range(4)]
    results = await connector.write("contacts", batch)

    assert [r.ok for r in results] == [True, True, False, True]
    assert results[2].error is not None
    assert results[2].error.fields == ("email",)
    assert len(route.calls) == 5  # 4 refused, then 2 ok + 2 refused, then 1 ok + 1 refused


@respx.mock(base_url=API, assert_all_called=True)
async def test_oauth_refresh_posts_a_form_and_uses_the_new_token(respx_mock: respx.MockRouter) -> None:
    token = respx_mock.post("/oauth/v1/token").respond(
        json={"token_type": "bearer", "refresh_token": "r1", "access_token": "fresh-token", "expires_in": 1800}
    )
    props = respx_mock.get("/crm/v3/properties/contacts").respond(json={"results": []})
    oauth = settings(access_token=None, client_id="cid", client_secret="shh", refresh_token="r1")
    conn = create(ConnectorContext("hubspot-unit", oauth))
    try:
        await conn.describe("contacts")
    finally:
        await conn.aclose()
    form = parse_qs(token.calls[0].request.content.decode())
    assert form == {
        "grant_type": ["refresh_token"],
        "client_id": ["cid"],
        "client_secret": ["shh"],
        "refresh_token": ["r1"],
    }
    assert token.calls[0].request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert props.calls[0].request.headers["authorization"] == "Bearer fresh-token"


@respx.mock(base_url=API, assert_all_called=True)
async def test_describe_reads_properties_and_pipeline_stages(
    respx_mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    def prop(name: str, kind: str, *, read_only: bool = False, **extra: Any) -> dict[str, Any]:
        meta = {"archivable": False, "readOnlyDefinition": True, "readOnlyValue": read_only}
        return {"name": name, "label": name, "type": kind, "fieldType": "text", "groupName": "g",
                "description": "", "options": [], "modificationMetadata": meta, **extra}  # fmt: skip

    stage_options = [{"label": "Won", "value": "closedwon", "hidden": False}]
    respx_mock.get("/crm/v3/properties/deals").respond(
        json={
            "results": [
                prop("amount", "number", showCurrencySymbol=True),
                prop("dealstage", "enumeration", options=stage_options),
                prop("hs_is_closed_won", "bool", read_only=True),
            ]
        }
    )
    stages = [
        {"id": "closedwon", "label": "Won", "metadata": {"isClosed": "true", "probability": "1.0"}},
        {"id": "closedlost", "label": "Lost", "metadata": {"isClosed": "true", "probability": "0.0"}},
        {"id": "contractsent", "label": "Contract", "metadata": {"isClosed": "false", "probability": "0.9"}},
    ]
    respx_mock.get("/crm/v3/pipelines/deals").respond(json={"results": [{"id": "default", "stages": stages}]})
    described = await connector.describe("deals")

    assert described.fields["amount"].type is FieldType.DECIMAL
    assert described.fields["dealstage"].picklist == ("closedwon",)
    assert described.fields["dealstage"].restricted
    assert described.fields["hs_is_closed_won"].read_only
    assert described.won_stages() == {"closedwon"}
    assert [(s.value, s.is_closed, s.probability) for s in described.stages][1] == ("closedlost", True, 0.0)


@respx.mock(base_url=API, assert_all_called=True)
async def test_associations_use_v4_batch_read_and_default_associate(
    respx_mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    kind = {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}
    read = respx_mock.post("/crm/v4/associations/deals/contacts/batch/read").respond(
        207,
        json={
            "status": "COMPLETE",
            "results": [{"from": {"id": "1"}, "to": [{"toObjectId": "11", "associationTypes": [kind]}]}],
            "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "none", "context": {},
                        "errors": [], "links": {}, "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND"}],
            "numErrors": 1,
        },
    )  # fmt: skip
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}
    made = respx_mock.post("/crm/v4/associations/deals/contacts/batch/associate/default").respond(
        json={"status": "COMPLETE", "results": [{"from": {"id": "1"}, "to": {"id": "12"}, "associationSpec": spec}]}
    )
    links = await connector.associations("deals", ["1", "2"])
    results = await connector.associate("deals", [Association("1", "12")])

    assert sent(read) == {"inputs": [{"id": "1"}, {"id": "2"}]}
    assert [(a.from_id, a.to_id) for a in links] == [("1", "11")]
    assert sent(made) == {"inputs": [{"from": {"id": "1"}, "to": {"id": "12"}}]}
    assert [r.ok for r in results] == [True]


@respx.mock(base_url=API, assert_all_called=True)
async def test_daily_limit_429_stops_calls(respx_mock: respx.MockRouter, connector: HubSpotConnector) -> None:
    body = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
            "policyName": "DAILY", "category": "RATE_LIMITS"}  # fmt: skip
    route = respx_mock.post("/crm/v3/objects/contacts/batch/read").respond(429, json=body)
    with pytest.raises(BudgetExhausted):
        await connector.read("contacts", ["1"])
    with pytest.raises(BudgetExhausted):
        await connector.read("contacts", ["2"])
    assert len(route.calls) == 1, "a spent daily quota is not retried, nor asked again"


def test_settings_need_a_private_app_token_or_oauth() -> None:
    with pytest.raises(ValueError, match="access_token"):
        HubSpotSettings(client_id="only-an-id")
    assert HubSpotSettings(access_token="pat").api_url == API
    assert HubSpotSettings(access_token="pat", base_url="http://127.0.0.1:9/").oauth_url == "http://127.0.0.1:9"


async def test_search_has_its_own_bucket_in_limits(connector: HubSpotConnector) -> None:
    limits = connector.limits("contacts")
    assert (limits.requests_per_window, limits.window_seconds, limits.max_write_batch) == (190, 10.0, 100)
    assert limits.buckets["search"] == (4, 1.0)


async def test_credentials_are_registered_for_redaction() -> None:
    oauth = settings(access_token=None, client_id="cid", client_secret="client-secret-xyz", refresh_token="refresh-xyz")
    conn = create(ConnectorContext("hubspot-unit", oauth))
    await conn.aclose()
    text = redact("secret client-secret-xyz and refresh-xyz")
    assert "client-secret-xyz" not in text
    assert "refresh-xyz" not in text


async def test_limits_take_the_admin_overrides() -> None:
    conn = create(ConnectorContext("hubspot-unit", settings(requests_per_window=100, daily_budget=250_000)))
    await conn.aclose()
    limits = conn.limits("deals")
    assert (limits.requests_per_window, limits.daily_budget) == (100, 250_000)
