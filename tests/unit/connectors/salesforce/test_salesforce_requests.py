"""Request shapes of the Salesforce connector (respx): token grants, instance URL, queries, collections, limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
from closeloop_connectors.salesforce import SalesforceConnector, SalesforceSettings
from closeloop_connectors.salesforce.sandbox import sandbox_jwt_key

from closeloop.connector import ConnectorContext
from closeloop.http import BudgetExhausted
from closeloop.model import Cursor, WriteOp, WriteRequest, WriteStatus

LOGIN = "https://login.salesforce.com"
INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v60.0"
FIELDS = [
    {
        "name": n,
        "type": t,
        "createable": c,
        "updateable": c,
        "externalId": n == "Closeloop_Id__c",
        "idLookup": n in ("Id", "Email", "Closeloop_Id__c"),
    }
    for n, t, c in [
        ("Id", "id", False),
        ("IsDeleted", "boolean", False),
        ("MasterRecordId", "reference", False),
        ("SystemModstamp", "datetime", False),
        ("Email", "email", True),
        ("LastName", "string", True),
        ("Closeloop_Id__c", "string", True),
        ("MailingAddress", "address", True),
    ]
]
DESCRIBE = {"name": "Contact", "fields": FIELDS}


def settings(**overrides: Any) -> SalesforceSettings:
    private, _ = sandbox_jwt_key()
    values: dict[str, Any] = {
        "client_id": "consumer-key",
        "username": "sync@acme.example",
        "private_key": private.decode(),
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        **overrides,
    }
    return SalesforceSettings(**values)


@pytest.fixture
async def connector() -> AsyncIterator[SalesforceConnector]:
    conn = SalesforceConnector(ConnectorContext(system="sf", settings=settings()))
    yield conn
    await conn.aclose()


def token_route(mock: respx.MockRouter) -> respx.Route:
    return mock.post(f"{LOGIN}/services/oauth2/token").mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "00Dtoken-abcdefgh",
                "instance_url": INSTANCE,
                "token_type": "Bearer",
                "id": f"{LOGIN}/id/00D/005",
            },
        )
    )


def record(n: int, stamp: str = "2026-03-31T10:00:00.000+0000", **extra: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Contact"},
        "Id": f"003{n:015d}",
        "SystemModstamp": stamp,
        "IsDeleted": False,
        "MasterRecordId": None,
        "Email": f"p{n}@x.io",
        **extra,
    }


async def test_jwt_bearer_grant_and_instance_url_become_the_api_base(connector: SalesforceConnector) -> None:
    with respx.mock(assert_all_called=True) as mock:
        token = token_route(mock)
        describe = mock.get(f"{API}/sobjects/Contact/describe").mock(return_value=httpx.Response(200, json=DESCRIBE))
        await connector.describe("Contact")
    form = parse_qs(token.calls.last.request.content.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    _, public = sandbox_jwt_key()
    claims = jwt.decode(form["assertion"][0], public, algorithms=["RS256"], audience=LOGIN)
    assert claims["iss"] == "consumer-key"
    assert claims["sub"] == "sync@acme.example"
    assert 0 < claims["exp"] - datetime.now(UTC).timestamp() <= 180
    assert describe.calls.last.request.headers["Authorization"] == "Bearer 00Dtoken-abcdefgh"


async def test_client_credentials_grant_posts_to_my_domain() -> None:
    my_domain = "https://acme.my.salesforce.com"
    conn = SalesforceConnector(
        ConnectorContext(
            system="sf",
            settings=SalesforceSettings(
                auth_flow="client_credentials", client_id="ck", client_secret="cs-secret-value", auth_url=my_domain
            ),
        )
    )
    try:
        with respx.mock(assert_all_called=True) as mock:
            token = mock.post(f"{my_domain}/services/oauth2/token").mock(
                return_value=httpx.Response(200, json={"access_token": "tok-abcdefgh", "instance_url": INSTANCE})
            )
            mock.get(f"{API}/sobjects/Contact/describe").mock(return_value=httpx.Response(200, json=DESCRIBE))
            await conn.describe("Contact")
        form = parse_qs(token.calls.last.request.content.decode())
        assert form == {"grant_type": ["client_credentials"], "client_id": ["ck"], "client_secret": ["cs-secret-value"]}
    finally:
        await conn.aclose()


def test_client_credentials_without_my_domain_is_refused() -> None:
    with pytest.raises(ValueError, match="My Domain"):
        SalesforceSettings(auth_flow="client_credentials", client_id="ck", client_secret="cs")


async def test_changes_read_queryall_with_batch_size_and_follows_next_records_url() -> None:
    conn = SalesforceConnector(ConnectorContext(system="sf", settings=settings(page_size=2)))
    try:
        with respx.mock(assert_all_called=True) as mock:
            token_route(mock)
            mock.get(f"{API}/sobjects/Contact/describe").mock(return_value=httpx.Response(200, json=DESCRIBE))
            first = mock.get(f"{API}/queryAll").mock(
                return_value=httpx.Response(
                    200,
                    json={
                        "totalSize": 3,
                        "done": False,
                        "records": [record(1), record(2)],
                        "nextRecordsUrl": "/services/data/v60.0/queryAll/01gX-2",
                    },
                )
            )
            more = mock.get(f"{API}/queryAll/01gX-2").mock(
                return_value=httpx.Response(200, json={"totalSize": 3, "done": True, "records": [record(3)]})
            )
            since = Cursor(datetime(2026, 3, 31, 9, tzinfo=UTC), "003000000000000009")
            pages = [page async for page in conn.read_changes("Contact", since)]
        query = first.calls.last.request.url.params["q"]
        assert query == (
            "SELECT Id, IsDeleted, MasterRecordId, SystemModstamp, Email, LastName, Closeloop_Id__c FROM Contact "
            "WHERE (SystemModstamp > 2026-03-31T09:00:00.000Z OR (SystemModstamp = 2026-03-31T09:00:00.000Z "
            "AND Id > '003000000000000009')) ORDER BY SystemModstamp, Id"
        )
        assert first.calls.last.request.headers["Sforce-Query-Options"] == "batchSize=2"
        assert more.called
        assert [len(p.records) for p in pages] == [2, 1]
    finally:
        await conn.aclose()


async def test_upsert_uses_the_external_id_collection_and_splits_at_200(connector: SalesforceConnector) -> None:
    batch = [
        WriteRequest(
            f"r{i}", WriteOp.UPSERT, {"Closeloop_Id__c": f"cl-{i}", "LastName": f"L{i}"}, upsert_key="Closeloop_Id__c"
        )
        for i in range(250)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        return httpx.Response(
            200,
            json=[
                {"id": f"003{i:015d}", "success": True, "errors": [], "created": i % 2 == 0}
                for i, _ in enumerate(records)
            ],
        )

    with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        mock.get(f"{API}/sobjects/Contact/describe").mock(return_value=httpx.Response(200, json=DESCRIBE))
        upsert = mock.patch(f"{API}/composite/sobjects/Contact/Closeloop_Id__c").mock(side_effect=answer)
        results = await connector.write("Contact", batch)
    sizes = [len(json.loads(call.request.content)["records"]) for call in upsert.calls]
    assert sizes == [200, 50]
    body = json.loads(upsert.calls[0].request.content)
    assert body["allOrNone"] is False
    assert body["records"][0] == {"attributes": {"type": "Contact"}, "Closeloop_Id__c": "cl-0", "LastName": "L0"}
    assert [r.ref for r in results] == [b.ref for b in batch]
    assert results[0].status is WriteStatus.CREATED
    assert results[1].status is WriteStatus.UPDATED


async def test_upsert_key_must_be_an_external_id(connector: SalesforceConnector) -> None:
    with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        mock.get(f"{API}/sobjects/Contact/describe").mock(return_value=httpx.Response(200, json=DESCRIBE))
        with pytest.raises(ValueError, match="external id"):
            await connector.write(
                "Contact", [WriteRequest("r", WriteOp.UPSERT, {"LastName": "x"}, upsert_key="LastName")]
            )


async def test_per_record_errors_keep_salesforce_codes(connector: SalesforceConnector) -> None:
    batch = [WriteRequest(f"r{i}", WriteOp.UPDATE, {"LastName": "x"}, native_id=f"003{i:015d}") for i in range(3)]
    answer = [
        {"id": "003000000000000000", "success": True, "errors": []},
        {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}]},
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "REQUIRED_FIELD_MISSING",
                    "message": "Required fields are missing: [LastName]",
                    "fields": ["LastName"],
                }
            ],
        },
    ]
    with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        mock.get(f"{API}/sobjects/Contact/describe").mock(return_value=httpx.Response(200, json=DESCRIBE))
        update = mock.patch(f"{API}/composite/sobjects").mock(return_value=httpx.Response(200, json=answer))
        results = await connector.write("Contact", batch)
    assert json.loads(update.calls.last.request.content)["records"][1]["Id"] == "003000000000000001"
    assert [r.status for r in results] == [WriteStatus.UPDATED, WriteStatus.FAILED, WriteStatus.FAILED]
    assert results[1].error is not None
    assert results[1].error.retryable
    assert results[2].error is not None
    assert (results[2].error.code, results[2].error.fields) == ("REQUIRED_FIELD_MISSING", ("LastName",))
    assert not results[2].error.retryable


async def test_request_limit_exceeded_stops_calls(connector: SalesforceConnector) -> None:
    spent = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        describe = mock.get(f"{API}/sobjects/Contact/describe").mock(return_value=httpx.Response(403, json=spent))
        with pytest.raises(BudgetExhausted):
            await connector.describe("Contact")
        with pytest.raises(BudgetExhausted):
            await connector.describe("Contact")
    assert describe.call_count == 1  # no retry loop, and the next call is not even sent


async def test_concurrent_request_limit_is_waited_out(connector: SalesforceConnector) -> None:
    busy = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        describe = mock.get(f"{API}/sobjects/Contact/describe").mock(
            side_effect=[httpx.Response(403, json=busy), httpx.Response(200, json=DESCRIBE)]
        )
        schema = await connector.describe("Contact")
    assert describe.call_count == 2
    assert "Email" in schema.fields


async def test_sforce_limit_info_feeds_the_daily_budget(connector: SalesforceConnector) -> None:
    with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        mock.get(f"{API}/sobjects/Contact/describe").mock(
            return_value=httpx.Response(200, json=DESCRIBE, headers={"Sforce-Limit-Info": "api-usage=14990/15000"})
        )
        await connector.describe("Contact")
    assert connector.limits("Contact").daily_budget == 15_000
    assert connector.http.limiter.budget.limit == 15_000
    with pytest.raises(BudgetExhausted):  # 14,990 used of 15,000 with the 10% reserve: nothing left to spend
        connector.http.limiter.budget.check()


async def test_expired_session_gets_a_new_grant(connector: SalesforceConnector) -> None:
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with respx.mock(assert_all_called=True) as mock:
        token = token_route(mock)
        mock.get(f"{API}/sobjects/Contact/describe").mock(
            side_effect=[httpx.Response(401, json=expired), httpx.Response(200, json=DESCRIBE)]
        )
        await connector.describe("Contact")
    assert token.call_count == 2


async def test_contact_roles_are_read_by_opportunity_ids(connector: SalesforceConnector) -> None:
    role_fields = [{"name": n, "type": "reference"} for n in ("Id", "OpportunityId", "ContactId", "Role")]
    with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        mock.get(f"{API}/sobjects/OpportunityContactRole/describe").mock(
            return_value=httpx.Response(200, json={"name": "OpportunityContactRole", "fields": role_fields})
        )
        query = mock.get(f"{API}/query").mock(
            return_value=httpx.Response(
                200,
                json={
                    "totalSize": 1,
                    "done": True,
                    "records": [
                        {
                            "Id": "00K000000000000001",
                            "OpportunityId": "006000000000000001",
                            "ContactId": "003000000000000001",
                            "Role": "Decision Maker",
                        }
                    ],
                },
            )
        )
        links = await connector.associations("Opportunity", ["006000000000000001", "006000000000000002"])
    assert query.calls.last.request.url.params["q"] == (
        "SELECT Id, OpportunityId, ContactId, Role FROM OpportunityContactRole "
        "WHERE OpportunityId IN ('006000000000000001', '006000000000000002')"
    )
    assert [(a.from_id, a.to_id, a.role) for a in links] == [
        ("006000000000000001", "003000000000000001", "Decision Maker")
    ]
