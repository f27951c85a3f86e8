"""The Salesforce sandbox over HTTP: OAuth grants, TLS serving, collections, query paging, limits."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from closeloop_connectors.salesforce import soql
from closeloop_connectors.salesforce.sandbox import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    JWT_CONSUMER_KEY,
    JWT_USERNAME,
    SalesforceSandbox,
    sandbox_jwt_key,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from closeloop.connector import ConnectorContext, SystemSettings
from closeloop.engine.failures import FailureKind, classify
from closeloop.http import TlsVerificationFailed, build_http
from closeloop.model import Limits
from closeloop.sandbox.serve import self_signed_cert, serving

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
async def client(sandbox: SalesforceSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A raw client holding a client-credentials session."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as raw:
        token = await raw.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
            },
        )
        raw.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield raw


def assertion(key: bytes, **claims: Any) -> str:
    values = {
        "iss": JWT_CONSUMER_KEY,
        "sub": JWT_USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
        **claims,
    }
    return jwt.encode(values, key, algorithm="RS256")


def other_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        pytest.param({}, None, id="valid"),
        pytest.param({"aud": "https://evil.example"}, "invalid_grant", id="wrong-audience"),
        pytest.param({"exp": int(time.time()) - 10}, "invalid_grant", id="expired"),
        pytest.param({"sub": "someone@else"}, "invalid_grant", id="unknown-user"),
        pytest.param({"iss": "unknown-app"}, "invalid_client_id", id="unknown-consumer"),
        pytest.param({"signed_by": "other"}, "invalid_grant", id="wrong-signature"),
    ],
)
async def test_jwt_bearer_assertion_is_verified(
    sandbox: SalesforceSandbox, claims: dict[str, Any], error: str | None
) -> None:
    private, _ = sandbox_jwt_key()
    key = other_key() if claims.pop("signed_by", None) else private
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as raw:
        answer = await raw.post(
            "/services/oauth2/token", data={"grant_type": JWT_GRANT, "assertion": assertion(key, **claims)}
        )
    if error is None:
        assert answer.status_code == 200
        assert answer.json()["instance_url"] == sandbox.base_url
    else:
        assert answer.status_code == 400
        assert answer.json()["error"] == error


async def test_bad_session_is_invalid_session_id(sandbox: SalesforceSandbox) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as raw:
        answer = await raw.get("/services/data/v60.0/limits", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}]


async def test_sandbox_serves_over_tls(sandbox: SalesforceSandbox, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    async with serving([("salesforce", sandbox)], tls=(cert, key)) as served:
        base = served[0].base_url
        assert base.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(base_url=base, verify=ssl.create_default_context(cafile=str(cert))) as raw:
            token = await raw.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_CLIENT_SECRET,
                },
            )
            assert token.json()["instance_url"] == base
            answer = await raw.get(
                "/services/data/v60.0/query",
                params={"q": "SELECT Id, Email FROM Contact ORDER BY Id LIMIT 3"},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
    assert answer.status_code == 200
    assert answer.json()["totalSize"] == 3


async def test_query_pages_through_next_records_url(client: httpx.AsyncClient) -> None:
    query = "SELECT Id FROM Contact ORDER BY SystemModstamp, Id"
    first = await client.get(
        "/services/data/v59.0/query", params={"q": query}, headers={"Sforce-Query-Options": "batchSize=12"}
    )
    body = first.json()
    assert (body["totalSize"], body["done"], len(body["records"])) == (30, False, 12)
    seen = [r["Id"] for r in body["records"]]
    while not body["done"]:
        assert body["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
        body = (await client.get(body["nextRecordsUrl"])).json()
        seen += [r["Id"] for r in body["records"]]
    assert len(seen) == len(set(seen)) == 30
    stale = await client.get("/services/data/v59.0/query/01gNOPE-12")
    assert stale.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


async def test_query_default_batch_is_2000(sandbox: SalesforceSandbox, client: httpx.AsyncClient) -> None:
    for i in range(2100):
        sandbox.table("Lead").insert({"LastName": f"L{i}", "Company": "Acme"})
    body = (await client.get("/services/data/v60.0/query", params={"q": "SELECT Id FROM Lead"})).json()
    assert (body["totalSize"], len(body["records"]), body["done"]) == (2106, 2000, False)


async def test_query_vs_queryall_on_deleted(sandbox: SalesforceSandbox, client: httpx.AsyncClient) -> None:
    victim = next(iter(sandbox.table("Contact").live()))
    gone = await client.delete(f"/services/data/v60.0/sobjects/Contact/{victim.id}")
    assert gone.status_code == 204
    contacts = soql.AllowList("Contact", frozenset(sandbox.org.objects["Contact"].fields))
    q = soql.select(contacts, ["Id", "IsDeleted"], soql.compare(contacts, "Id", "=", victim.id))
    assert (await client.get("/services/data/v60.0/query", params={"q": q})).json()["records"] == []
    everything = (await client.get("/services/data/v60.0/queryAll", params={"q": q})).json()["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in everything] == [(victim.id, True)]


async def test_all_or_none_rolls_back_every_record(sandbox: SalesforceSandbox, client: httpx.AsyncClient) -> None:
    before = len(sandbox.table("Contact"))
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "Good", "Email": "good@example.org"},
        {"attributes": {"type": "Contact"}, "Email": "nolastname@example.org"},
    ]
    answer = await client.post("/services/data/v60.0/composite/sobjects", json={"allOrNone": True, "records": records})
    results = answer.json()
    assert answer.status_code == 200
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0] == {
        "statusCode": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [LastName]",
        "fields": ["LastName"],
    }
    assert len(sandbox.table("Contact")) == before


async def test_collections_refuse_more_than_200(client: httpx.AsyncClient) -> None:
    records = [{"attributes": {"type": "Contact"}, "LastName": f"N{i}"} for i in range(201)]
    answer = await client.post("/services/data/v60.0/composite/sobjects", json={"allOrNone": False, "records": records})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


async def test_limits_and_usage_header(sandbox: SalesforceSandbox, client: httpx.AsyncClient) -> None:
    answer = await client.get("/services/data/v60.0/limits")
    used = sandbox.daily_used
    assert answer.headers["Sforce-Limit-Info"] == f"api-usage={used}/100000"
    assert answer.json()["DailyApiRequests"] == {"Max": 100000, "Remaining": 100000 - used}
    sandbox.knobs.daily_limit = used
    refused = await client.get("/services/data/v60.0/limits")
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


async def test_sobject_errors_are_lists(client: httpx.AsyncClient) -> None:
    missing = await client.get("/services/data/v60.0/sobjects/Contact/003000000000999AAA")
    assert (missing.status_code, missing.json()[0]["errorCode"]) == (404, "NOT_FOUND")
    bad = await client.post("/services/data/v60.0/sobjects/Lead", json={"LastName": "X", "Status__c": "Hot"})
    assert bad.status_code == 400
    codes = {e["errorCode"] for e in bad.json()}
    assert codes == {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "REQUIRED_FIELD_MISSING"}
    unknown = await client.patch("/services/data/v60.0/sobjects/Contact/Nope__c/1", json={})
    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"


async def test_a_certificate_the_client_does_not_trust_fails_at_once_as_tls(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    cert, key = self_signed_cert(tmp_path)
    async with serving([("salesforce", sandbox)], tls=(cert, key)) as served:
        context = ConnectorContext(system="crm", settings=SystemSettings())
        limits = Limits(200, 200, 2000, requests_per_window=100, window_seconds=1.0, max_concurrency=4)
        http = build_http(context, base_url=served[0].base_url, auth=None, limits=limits)
        try:
            with pytest.raises(TlsVerificationFailed, match="TLS certificate verification failed") as failed:
                await http.request("GET", "/services/data/v60.0/limits")
        finally:
            await http.aclose()
    assert sum(http.stats.calls.values()) == 1  # not retried: a certificate does not start verifying by itself
    assert http.stats.retries == 0
    assert classify(failed.value).kind is FailureKind.TLS


async def test_composite_refuses_more_than_25_subrequests_and_a_bad_precondition_date(
    sandbox: SalesforceSandbox, client: httpx.AsyncClient
) -> None:
    contact = next(iter(sandbox.table("Contact").live())).id
    sub = {"method": "PATCH", "url": f"/services/data/v60.0/sobjects/Contact/{contact}", "body": {"Title": "q"}}
    many = {"compositeRequest": [{**sub, "referenceId": f"r{i}"} for i in range(26)]}
    assert (await client.post("/services/data/v60.0/composite", json=many)).status_code == 400
    bad = {**sub, "referenceId": "r0", "httpHeaders": {"If-Unmodified-Since": "yesterday"}}
    answer = (await client.post("/services/data/v60.0/composite", json={"compositeRequest": [bad]})).json()
    assert answer["compositeResponse"][0]["httpStatusCode"] == 400
    assert answer["compositeResponse"][0]["referenceId"] == "r0"


async def test_a_row_patch_with_if_unmodified_since_before_the_last_change_is_412(
    sandbox: SalesforceSandbox, client: httpx.AsyncClient
) -> None:
    contact = next(iter(sandbox.table("Contact").live())).id
    url = f"/services/data/v60.0/sobjects/Contact/{contact}"
    assert (await client.patch(url, json={"Title": "a"})).status_code == 204
    stale = {"If-Unmodified-Since": "Mon, 02 Mar 2020 09:00:00 GMT"}
    answer = await client.patch(url, json={"Title": "b"}, headers=stale)
    assert answer.status_code == 412
    assert sandbox.table("Contact").get(contact).fields["Title"] == "a"
