"""Request shapes of the Zoho connector, and one test per Zoho quirk it handles (respx, no sandbox)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from closeloop_connectors.zoho.adapter import ZohoConnector
from closeloop_connectors.zoho.reads import changes_query, equals_criteria, interleave, to_deletion, to_record
from closeloop_connectors.zoho.schema import MissingFieldError
from closeloop_connectors.zoho.settings import HOSTS, ZohoSettings

from closeloop.connector import ConnectorContext
from closeloop.http import AuthError, BudgetExhausted
from closeloop.model import Cursor, WriteOp, WriteRequest, WriteStatus

ACCOUNTS = "https://accounts.zoho.com"
API = "https://www.zohoapis.com"
TOKEN = {"access_token": "1000.tok", "api_domain": API, "token_type": "Bearer", "expires_in": 3600}


def field(name: str, data_type: str = "text", **extra: Any) -> dict[str, Any]:
    return {"api_name": name, "data_type": data_type, "read_only": False, **extra}


CONTACT_FIELDS = {"fields": [field("Last_Name"), field("Email", "email"), field("Modified_Time", "datetime")]}


def make(**overrides: Any) -> ZohoConnector:
    settings = ZohoSettings(
        client_id="1000.client",
        client_secret="s3cret",
        refresh_token="1000.refresh",
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.02,
        **overrides,
    )
    return ZohoConnector(ConnectorContext(system="zoho-test", settings=settings))


@pytest.fixture
async def connector() -> AsyncIterator[ZohoConnector]:
    conn = make()
    yield conn
    await conn.aclose()


def mock_auth(mock: respx.MockRouter, accounts: str = ACCOUNTS, token: dict[str, Any] = TOKEN) -> respx.Route:
    return mock.post(f"{accounts}/oauth/v2/token").mock(return_value=httpx.Response(200, json=token))


def mock_fields(mock: respx.MockRouter, payload: dict[str, Any] = CONTACT_FIELDS) -> respx.Route:
    return mock.get(f"{API}/crm/v8/settings/fields", params={"module": "Contacts"}).mock(
        return_value=httpx.Response(200, json=payload)
    )


async def test_refresh_token_flow_and_zoho_oauthtoken_header(connector: ZohoConnector) -> None:
    with respx.mock(assert_all_called=True) as mock:
        token = mock_auth(mock)
        fields = mock_fields(mock)
        await connector.describe("Contacts")
    params = token.calls.last.request.url.params
    assert dict(params) == {
        "grant_type": "refresh_token",
        "client_id": "1000.client",
        "client_secret": "s3cret",
        "refresh_token": "1000.refresh",
    }
    assert fields.calls.last.request.headers["Authorization"] == "Zoho-oauthtoken 1000.tok"


@pytest.mark.parametrize(
    ("centre", "accounts", "api"),
    [
        ("us", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        ("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        ("in", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        ("au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
        ("jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        ("cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
        ("ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
        ("sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
    ],
)
async def test_data_centre_hosts(centre: str, accounts: str, api: str) -> None:
    conn = make(data_centre=centre)
    token = {**TOKEN, "api_domain": api}
    try:
        with respx.mock(assert_all_called=True) as mock:
            mock_auth(mock, accounts, token)
            mock.get(f"{api}/crm/v8/settings/fields").mock(return_value=httpx.Response(200, json=CONTACT_FIELDS))
            await conn.describe("Contacts")
    finally:
        await conn.aclose()
    assert HOSTS[centre] == (accounts, api)


async def test_api_domain_from_token_becomes_the_api_base() -> None:
    conn = make()  # US accounts host, but the org lives in the EU data centre
    try:
        with respx.mock(assert_all_called=True) as mock:
            mock_auth(mock, token={**TOKEN, "api_domain": "https://www.zohoapis.eu"})
            eu = mock.get("https://www.zohoapis.eu/crm/v8/settings/fields").mock(
                return_value=httpx.Response(200, json=CONTACT_FIELDS)
            )
            await conn.describe("Contacts")
        assert eu.called
    finally:
        await conn.aclose()


async def test_base_and_auth_url_overrides_win() -> None:
    conn = make(base_url="http://127.0.0.1:9000", auth_url="http://127.0.0.1:9001", data_centre="eu")
    try:
        with respx.mock(assert_all_called=True) as mock:
            mock_auth(mock, "http://127.0.0.1:9001")
            mock.get("http://127.0.0.1:9000/crm/v8/settings/fields").mock(
                return_value=httpx.Response(200, json=CONTACT_FIELDS)
            )
            await conn.describe("Contacts")
    finally:
        await conn.aclose()


async def test_refused_refresh_token_answered_with_200_is_an_auth_error(connector: ZohoConnector) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock, token={"error": "invalid_code"})
        with pytest.raises(AuthError, match="invalid_code") as caught:
            await connector.describe("Contacts")
    assert "1000.refresh" not in str(caught.value)


async def test_module_without_modified_time_names_module_and_field(connector: ZohoConnector) -> None:
    custom = {"fields": [field("Name"), field("Email", "email")]}
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        mock.get(f"{API}/crm/v8/settings/fields").mock(return_value=httpx.Response(200, json=custom))
        with pytest.raises(MissingFieldError) as caught:
            async for _ in connector.read_changes("Partner_Referrals", None):
                pass
    assert "'Partner_Referrals'" in str(caught.value)
    assert "'Modified_Time'" in str(caught.value)


def test_modified_time_offset_converted_to_utc() -> None:
    record = to_record({"id": "4876876000000001", "Modified_Time": "2026-03-01T10:00:00+05:30", "Email": "a@b.c"})
    assert record.modified_at == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)
    deletion = to_deletion({"id": "4876876000000002", "deleted_time": "2026-03-29T01:30:00-07:00"})
    assert deletion.modified_at == datetime(2026, 3, 29, 8, 30, tzinfo=UTC)
    assert deletion.deleted


def test_coql_second_resolution_tiebreak() -> None:
    cursor = Cursor(datetime(2026, 3, 1, 4, 30, tzinfo=UTC), "4876876000000010")
    query = changes_query("Contacts", ["Modified_Time", "Email"], cursor, 2000)
    assert (
        "where Modified_Time >= '2026-03-01T04:30:00+00:00' and "
        "(Modified_Time > '2026-03-01T04:30:00+00:00' or id > 4876876000000010)"
    ) in query
    assert query.endswith("order by Modified_Time asc, id asc limit 0, 2000")
    # A cursor finer than a second is floored; the connector drops what lies at or before it.
    fine = Cursor(datetime(2026, 3, 1, 4, 30, 0, 500_000, tzinfo=UTC), "4876876000000010")
    assert "id >" not in changes_query("Contacts", ["Modified_Time"], fine, 5000)
    assert "limit 0, 2000" in changes_query("Contacts", ["Modified_Time"], fine, 5000)


async def test_coql_page_drops_records_at_or_before_the_cursor(connector: ZohoConnector) -> None:
    stamp = "2026-03-01T10:00:00+05:30"
    rows = [{"id": f"48768760000000{i:02d}", "Modified_Time": stamp, "Email": f"{i}@x.io"} for i in range(1, 5)]
    cursor = Cursor(datetime(2026, 3, 1, 4, 30, 0, 400_000, tzinfo=UTC), "")
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        mock_fields(mock)
        mock.get(f"{API}/crm/v8/Contacts/deleted").mock(return_value=httpx.Response(304))
        coql = mock.post(f"{API}/crm/v8/coql").mock(
            return_value=httpx.Response(200, json={"data": rows, "info": {"count": 4, "more_records": False}})
        )
        pages = [page async for page in connector.read_changes("Contacts", cursor)]
    # Zoho only knows 10:00:00 IST, which is before the cursor's 04:30:00.4 UTC: nothing is newer.
    assert pages == []
    assert (
        "select Modified_Time, Last_Name, Email from Contacts"
        in json.loads(coql.calls.last.request.content)["select_query"]
    )


async def test_deletions_read_with_if_modified_since_and_interleaved(connector: ZohoConnector) -> None:
    cursor = Cursor(datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "1")
    live = [
        {"id": "4876876000000011", "Modified_Time": "2026-03-01T06:00:00+05:30"},
        {"id": "4876876000000012", "Modified_Time": "2026-03-01T08:00:00+05:30"},
    ]
    gone = [{"id": "4876876000000013", "deleted_time": "2026-03-01T07:00:00+05:30", "type": "recycle"}]
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        mock_fields(mock)
        deleted = mock.get(f"{API}/crm/v8/Contacts/deleted").mock(
            return_value=httpx.Response(200, json={"data": gone, "info": {"more_records": False}})
        )
        mock.post(f"{API}/crm/v8/coql").mock(
            return_value=httpx.Response(200, json={"data": live, "info": {"more_records": False}})
        )
        pages = [page async for page in connector.read_changes("Contacts", cursor)]
    request = deleted.calls.last.request
    assert request.headers["If-Modified-Since"] == "2026-03-01T00:00:00+00:00"
    assert request.url.params["type"] == "all"
    ids = [(r.id, r.deleted) for p in pages for r in p.records]
    assert ids == [("4876876000000011", False), ("4876876000000013", True), ("4876876000000012", False)]


def test_interleave_keeps_later_deletions_for_later_pages() -> None:
    page = [to_record({"id": "10", "Modified_Time": "2026-03-01T00:00:05+00:00"})]
    pending = [
        to_deletion({"id": "11", "deleted_time": "2026-03-01T00:00:04+00:00"}),
        to_deletion({"id": "12", "deleted_time": "2026-03-01T00:00:09+00:00"}),
    ]
    assert [r.id for r in interleave(page, pending, last_page=False)] == ["11", "10"]
    assert [r.id for r in pending] == ["12"]


async def test_write_limit_100_per_call_splits(connector: ZohoConnector) -> None:
    batch = [
        WriteRequest(
            ref=f"r{i}", op=WriteOp.UPSERT, fields={"Last_Name": "X", "Email": f"p{i}@x.io"}, upsert_key="Email"
        )
        for i in range(250)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        data = json.loads(request.content)["data"]
        return httpx.Response(
            200,
            json={
                "data": [
                    {
                        "code": "SUCCESS",
                        "status": "success",
                        "action": "insert",
                        "message": "record added",
                        "details": {
                            "id": f"9{int(d['Email'][1:-5]):04d}",
                            "Modified_Time": "2026-03-01T10:00:00+05:30",
                        },
                    }
                    for d in data
                ]
            },
        )

    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        upsert = mock.post(f"{API}/crm/v8/Contacts/upsert").mock(side_effect=answer)
        results = await connector.write("Contacts", batch)
    sizes = [len(json.loads(call.request.content)["data"]) for call in upsert.calls]
    assert sizes == [100, 100, 50]
    assert all(json.loads(c.request.content)["duplicate_check_fields"] == ["Email"] for c in upsert.calls)
    assert [r.ref for r in results] == [f"r{i}" for i in range(250)]
    assert results[249].native_id == "90249"
    assert results[0].modified_at == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)


async def test_per_record_errors_in_a_400_body_are_results(connector: ZohoConnector) -> None:
    batch = [
        WriteRequest(ref="a", op=WriteOp.CREATE, fields={"Email": "a@x.io"}),
        WriteRequest(ref="b", op=WriteOp.UPDATE, native_id="42", fields={"Email": "nope"}),
    ]
    missing = {
        "code": "MANDATORY_NOT_FOUND",
        "status": "error",
        "message": "required field not found",
        "details": {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"},
    }
    invalid = {
        "code": "INVALID_DATA",
        "status": "error",
        "message": "invalid data",
        "details": {"api_name": "Email", "expected_data_type": "email"},
    }
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        create = mock.post(f"{API}/crm/v8/Contacts").mock(return_value=httpx.Response(400, json={"data": [missing]}))
        update = mock.put(f"{API}/crm/v8/Contacts").mock(return_value=httpx.Response(400, json={"data": [invalid]}))
        results = await connector.write("Contacts", batch)
    assert json.loads(update.calls.last.request.content) == {"data": [{"Email": "nope", "id": "42"}]}
    assert create.call_count == 1  # a create is not idempotent: never re-sent
    assert [r.status for r in results] == [WriteStatus.FAILED, WriteStatus.FAILED]
    assert results[0].error is not None
    assert results[0].error.code == "MANDATORY_NOT_FOUND"
    assert results[0].error.fields == ("Last_Name",)
    assert results[1].error is not None
    assert results[1].error.message == "invalid data (expected email)"
    assert not results[1].error.retryable


async def test_search_escapes_criteria_and_sends_10_conditions_per_call(connector: ZohoConnector) -> None:
    emails = [f"p{i}@x.io" for i in range(12)] + ["odd(one),x@x.io"]
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        mock_fields(mock)
        search = mock.get(f"{API}/crm/v8/Contacts/search").mock(return_value=httpx.Response(204))
        assert await connector.search("Contacts", "Email", emails) == []
    criteria = [call.request.url.params["criteria"] for call in search.calls]
    assert len(criteria) == 2
    assert criteria[0].count(":equals:") == 10
    assert criteria[1].endswith(r"(Email:equals:odd\(one\)\,x@x.io)")
    assert equals_criteria("Email", ["a@b.c"]) == "(Email:equals:a@b.c)"


async def test_daily_credits_spent_stop_calls(connector: ZohoConnector) -> None:
    spent = {"code": "LIMIT_EXCEEDED", "status": "error", "message": "credits exhausted", "details": {}}
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        mock.get(f"{API}/crm/v8/settings/fields").mock(return_value=httpx.Response(429, json=spent))
        with pytest.raises(BudgetExhausted):
            await connector.describe("Contacts")


async def test_deal_stages_from_stage_picklist_forecast_type(connector: ZohoConnector) -> None:
    stage = field(
        "Stage",
        "picklist",
        pick_list_values=[
            {
                "actual_value": "Qualification",
                "display_value": "Qualification",
                "forecast_type": "Open",
                "probability": 10,
            },
            {
                "actual_value": "Closed Won",
                "display_value": "Closed Won",
                "forecast_type": "Closed Won",
                "probability": 100,
            },
            {
                "actual_value": "Closed Lost",
                "display_value": "Closed Lost",
                "forecast_type": "Closed Lost",
                "probability": 0,
            },
        ],
    )
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        mock.get(f"{API}/crm/v8/settings/fields", params={"module": "Deals"}).mock(
            return_value=httpx.Response(200, json={"fields": [stage, field("Amount", "currency")]})
        )
        schema = await connector.describe("Deals")
    assert schema.won_stages() == {"Closed Won"}
    lost = next(s for s in schema.stages if s.value == "Closed Lost")
    assert lost.is_closed
    assert not lost.is_won
    assert lost.probability == 0
    assert schema.fields["Stage"].restricted
    assert schema.fields["Amount"].type == "decimal"


async def test_associate_points_contact_name_at_the_contact(connector: ZohoConnector) -> None:
    from closeloop.model import Association

    ok = {
        "code": "SUCCESS",
        "status": "success",
        "message": "record updated",
        "details": {"id": "77", "Modified_Time": "2026-03-01T10:00:00+05:30"},
    }
    with respx.mock(assert_all_called=True) as mock:
        mock_auth(mock)
        put = mock.put(f"{API}/crm/v8/Deals").mock(return_value=httpx.Response(200, json={"data": [ok]}))
        results = await connector.associate("Deals", [Association("77", "55")])
    assert json.loads(put.calls.last.request.content) == {"data": [{"Contact_Name": {"id": "55"}, "id": "77"}]}
    assert results[0].status is WriteStatus.UPDATED
