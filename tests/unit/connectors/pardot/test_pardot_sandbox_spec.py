"""The Account Engagement sandbox answers as API v5 does: auth and business-unit header, ``fields`` always
required, paging tokens, filters, the error body ``{code, message}`` and its codes, limits, recycle bin."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from closeloop_connectors.pardot.sandbox import PardotSandbox, create_sandbox

P = "/api/v5/objects/prospects"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(clock: Clock) -> PardotSandbox:
    """Eight seeded prospects."""
    return create_sandbox(seed=5, people=8, clock=clock, custom_fields=True)


@pytest.fixture
async def api(sandbox: PardotSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a token and the business-unit header."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="https://pi.test") as client:
        form = {
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        }
        token = (await client.post("/services/oauth2/token", data=form)).json()["access_token"]
        client.headers.update({"Authorization": f"Bearer {token}", "Pardot-Business-Unit-Id": sandbox.business_unit_id})
        yield client


def refusal(response: httpx.Response) -> tuple[int, int]:
    """(HTTP status, v5 code) of an error answer."""
    body = response.json()
    assert set(body) == {"code", "message"}
    return response.status_code, body["code"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Authorization": "Bearer nope"}, (401, 184), id="unknown-token"),
        pytest.param({"Pardot-Business-Unit-Id": "0Uv000000000999AAA"}, (401, 201), id="other-business-unit"),
    ],
)
async def test_credentials_are_checked(
    api: httpx.AsyncClient, headers: dict[str, str], expected: tuple[int, int]
) -> None:
    assert refusal(await api.get(P, params={"fields": "id"}, headers=headers)) == expected


async def test_missing_business_unit_header_is_181(api: httpx.AsyncClient) -> None:
    del api.headers["Pardot-Business-Unit-Id"]
    assert refusal(await api.get(P, params={"fields": "id"})) == (400, 181)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, (400, 13), id="fields-missing"),
        pytest.param({"fields": "id,nosuch"}, (400, 51), id="unknown-field"),
        pytest.param({"fields": "id", "limit": "1001"}, (400, 51), id="limit-over-1000"),
        pytest.param({"fields": "id", "orderBy": "email"}, (400, 51), id="order-by-unorderable"),
        pytest.param(
            {
                "fields": "id",
                "idGreaterThan": "1",
                "email": "a@b.c",
                "createdAtAfter": "2026-01-01T00:00:00+00:00",
                "updatedAtAfter": "2026-01-01T00:00:00+00:00",
            },
            (400, 209),
            id="four-filtered-fields",
        ),
        pytest.param({"fields": "id", "updatedAtAfter": "2026-01-01T00:00:00Z"}, (400, 51), id="zulu-time"),
        pytest.param({"fields": "id", "nextPageToken": "garbage!"}, (400, 211), id="invalid-token"),
    ],
)
async def test_bad_queries_are_refused(
    api: httpx.AsyncClient, params: dict[str, str], expected: tuple[int, int]
) -> None:
    assert refusal(await api.get(P, params=params)) == expected


async def test_unencoded_plus_in_an_offset_is_refused(api: httpx.AsyncClient) -> None:
    # A '+' left raw in a query string reads as a space: v5 wants positive offsets URL-encoded.
    raw = await api.get(f"{P}?fields=id&updatedAtAfter=2026-01-01T00:00:00+02:00")
    assert refusal(raw) == (400, 51)
    encoded = await api.get(P, params={"fields": "id", "updatedAtAfter": "2026-01-01T00:00:00+02:00"})
    assert encoded.status_code == 200


async def test_query_pages_with_tokens_that_carry_the_query(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    first = (await api.get(P, params={"fields": "id,email", "limit": "3", "orderBy": "id DESC"})).json()
    assert set(first) == {"values", "nextPageToken", "nextPageUrl"}
    ids = [v["id"] for v in first["values"]]
    token = first["nextPageToken"]
    assert first["nextPageUrl"].endswith(f"nextPageToken={token}")
    with_limit = await api.get(P, params={"fields": "id", "nextPageToken": token, "limit": "3"})
    assert refusal(with_limit) == (400, 51)  # only fields may accompany a token
    while token:
        page = (await api.get(P, params={"fields": "id", "nextPageToken": token})).json()
        ids.extend(v["id"] for v in page["values"])
        token = page["nextPageToken"]
    assert ids == sorted((int(row.id) for row in sandbox.tables["prospects"].live()), reverse=True)


async def test_page_tokens_expire_after_four_hours(
    api: httpx.AsyncClient, sandbox: PardotSandbox, clock: Clock
) -> None:
    sandbox.knobs.token_ttl_s = 86_400  # the access token outlives the page token here
    api.headers["Authorization"] = f"Bearer {sandbox.tokens.issue(sandbox.knobs.token_ttl_s)}"
    token = (await api.get(P, params={"fields": "id", "limit": "2"})).json()["nextPageToken"]
    clock.moment += timedelta(hours=4, seconds=1)
    assert refusal(await api.get(P, params={"fields": "id", "nextPageToken": token})) == (400, 210)


async def test_a_token_sequence_stops_at_its_record_limit(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    sandbox.sequence_limit = 5
    first = (await api.get(P, params={"fields": "id", "limit": "3"})).json()
    second = await api.get(P, params={"fields": "id", "nextPageToken": first["nextPageToken"]})
    assert len(second.json()["values"]) == 2
    assert second.json()["nextPageToken"] is None
    assert second.headers["Pardot-Warning"].startswith("203;")


async def test_times_are_in_the_api_users_zone_with_an_offset(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    row = next(sandbox.tables["prospects"].live())
    body = (await api.get(f"{P}/{row.id}", params={"fields": "id,createdAt,updatedAt,campaign.name"})).json()
    assert body["createdAt"].endswith("-05:00")
    assert datetime.fromisoformat(body["createdAt"]) == row.created_at
    assert body["campaign.name"]  # dot notation reads the related campaign


async def test_create_answers_201_with_location_and_the_asked_fields(api: httpx.AsyncClient) -> None:
    created = await api.post(P, params={"fields": "id,email"}, json={"email": "new@example.org", "firstName": "N"})
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"{P}/{created.json()['id']}")
    assert set(created.json()) == {"id", "email"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"grade": "A"}, (400, 180), id="read-only-field"),
        pytest.param({"fooBar": 1}, (400, 154), id="unknown-property"),
        pytest.param({"email": "not-an-email"}, (400, 4), id="bad-email"),
        pytest.param({"closeloop_revenue__c": "lots"}, (400, 85), id="bad-number"),
    ],
)
async def test_updates_are_checked(
    api: httpx.AsyncClient, sandbox: PardotSandbox, body: dict[str, Any], expected: tuple[int, int]
) -> None:
    row = next(sandbox.tables["prospects"].live())
    assert refusal(await api.patch(f"{P}/{row.id}", params={"fields": "id"}, json=body)) == expected


async def test_upsert_latest_by_email_creates_then_updates(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    body = {"matchEmail": "Up@Example.org", "prospect": {"firstName": "One"}, "fields": ["id", "firstName"]}
    created = await api.post(f"{P}/do/upsertLatestByEmail", json=body)
    again = await api.post(f"{P}/do/upsertLatestByEmail", json={**body, "prospect": {"firstName": "Two"}})
    assert (created.status_code, again.status_code) == (201, 200)
    assert created.json()["id"] == again.json()["id"]
    assert again.json()["firstName"] == "Two"


async def test_a_repeated_create_duplicates_the_email(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    # Allow Multiple Prospects with Same Email: why closeloop creates through upsertLatestByEmail.
    for _ in range(2):
        assert (await api.post(P, params={"fields": "id"}, json={"email": "twice@example.org"})).status_code == 201
    found = (await api.get(P, params={"fields": "id", "email": "twice@example.org"})).json()["values"]
    assert len(found) == 2


async def test_deleted_prospects_sit_in_the_recycle_bin(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    row = next(sandbox.tables["prospects"].live())
    assert (await api.delete(f"{P}/{row.id}")).status_code == 204
    read = await api.get(f"{P}/{row.id}", params={"fields": "id"})
    assert refusal(read) == (404, 3)
    assert read.headers["Pardot-Warning"].startswith("201;")
    assert refusal(await api.patch(f"{P}/{row.id}", params={"fields": "id"}, json={"firstName": "X"})) == (400, 219)
    recycled = (await api.get(P, params={"fields": "id,isDeleted", "deleted": "true"})).json()["values"]
    assert recycled == [{"id": int(row.id), "isDeleted": True}]
    live = (await api.get(P, params={"fields": "id", "limit": "1000"})).json()["values"]
    assert int(row.id) not in {v["id"] for v in live}


async def test_limits_answer_66_and_122(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    sandbox.knobs.fault_429 = 1.0
    assert refusal(await api.get(P, params={"fields": "id"})) == (429, 66)
    sandbox.knobs.fault_429, sandbox.knobs.daily_limit = 0.0, 0
    assert refusal(await api.get(P, params={"fields": "id"})) == (429, 122)


async def test_visitor_activities_filter_by_prospect_and_type(api: httpx.AsyncClient, sandbox: PardotSandbox) -> None:
    prospect = next(sandbox.tables["prospects"].live())
    params = {"fields": "id,type,prospectId,createdAt", "prospectId": prospect.id, "typeGreaterThanOrEqualTo": "2"}
    values = (await api.get("/api/v5/objects/visitor-activities", params=params)).json()["values"]
    assert [v["type"] for v in values] == [2, 4]
    assert {v["prospectId"] for v in values} == {int(prospect.id)}


async def test_custom_fields_are_listed_and_created(api: httpx.AsyncClient) -> None:
    path = "/api/v5/objects/custom-fields"
    made = await api.post(path, params={"fields": "id,fieldId,apiFieldId"}, json={"name": "Tier", "fieldId": "tier"})
    assert made.status_code == 201
    assert made.json()["apiFieldId"] == "tier__c"
    listed = (await api.get(path, params={"fields": "fieldId,type"})).json()["values"]
    assert {"fieldId": "closeloop_revenue", "type": "Number"} in listed
    assert refusal(await api.post(path, params={"fields": "id"}, json={"name": "Tier", "fieldId": "tier"})) == (400, 51)


def test_page_tokens_are_opaque_but_carry_no_secret(sandbox: PardotSandbox) -> None:
    from closeloop_connectors.pardot.sandbox.query import Query, encode_token

    token = encode_token(Query((), (("id", False),), 2, "false"), (1001.0,), 2, sandbox.clock.now())
    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert set(decoded) == {"q", "k", "n", "t"}
