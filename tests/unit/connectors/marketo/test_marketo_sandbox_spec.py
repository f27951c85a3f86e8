"""The Marketo sandbox's answers validated against Adobe's official Swagger files, plus its own quirks."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest
from closeloop_connectors.marketo.sandbox import MarketoSandbox, create_sandbox

from tests.specs import spec_dir

SPECS = spec_dir("marketo")
SPEC_DIR = SPECS if (SPECS / "swagger-mapi.json").exists() else None


def definitions() -> dict[str, Any]:
    """Definitions of both Swagger files; Attribute.value is loosened (see below)."""
    if SPEC_DIR is None:
        pytest.skip(f"the official Marketo specs are not present at {SPECS}")
    defs: dict[str, Any] = {}
    for name in ("swagger-mapi.json", "swagger-identity.json"):
        defs.update(json.loads((SPEC_DIR / name).read_text())["definitions"])
    defs = copy.deepcopy(defs)
    # The spec types an activity attribute's value as "object", yet Marketo's own documented answers carry
    # strings, numbers and booleans there (e.g. {"name": "Webpage ID", "value": 2001}).
    defs["Attribute"]["properties"]["value"] = {}
    return defs


def validate(body: Any, definition: str) -> None:
    """Validate ``body`` against one definition, resolving ``#/definitions/...`` references."""
    defs = definitions()
    schema = {"$ref": f"#/definitions/{definition}", "definitions": defs}
    jsonschema.Draft4Validator(schema).validate(body)


@pytest.fixture
def sandbox() -> MarketoSandbox:
    """A seeded sandbox."""
    return create_sandbox(seed=3, people=6, deals=3)


@pytest.fixture
async def client(sandbox: MarketoSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client of the sandbox."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="http://mkto") as raw:
        token = (await raw.post("/identity/oauth/token", params=credentials(sandbox))).json()["access_token"]
        raw.headers["Authorization"] = f"Bearer {token}"
        yield raw


def credentials(sandbox: MarketoSandbox) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": sandbox.client_id, "client_secret": sandbox.client_secret}


async def token_for(client: httpx.AsyncClient, since: str = "2026-01-01T00:00:00Z") -> str:
    body = (await client.get("/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": since})).json()
    validate(body, "ResponseOfVoid")
    return str(body["nextPageToken"])


async def test_identity_matches_spec(sandbox: MarketoSandbox) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="http://mkto") as raw:
        body = (await raw.get("/identity/oauth/token", params=credentials(sandbox))).json()
    validate(body, "ResponseOfIdentity")


async def test_leads_read_and_sync_match_spec(client: httpx.AsyncClient) -> None:
    read = await client.get("/rest/v1/leads.json", params={"filterType": "id", "filterValues": "1001,1002"})
    validate(read.json(), "ResponseOfLead")
    sync = await client.post(
        "/rest/v1/leads.json",
        json={"action": "createOnly", "lookupField": "email", "input": [{"email": "n@example.org"}, {"email": "x"}]},
    )
    validate(sync.json(), "ResponseOfLead")
    assert [r["status"] for r in sync.json()["result"]] == ["created", "skipped"]


async def test_describe_endpoints_match_spec(client: httpx.AsyncClient) -> None:
    validate((await client.get("/rest/v1/leads/describe.json")).json(), "ResponseOfLeadAttribute")
    validate((await client.get("/rest/v1/leads/describe2.json")).json(), "ResponseOfLeadAttribute2")
    validate((await client.get("/rest/v1/activities/types.json")).json(), "ResponseOfActivityType")


async def test_activity_endpoints_match_spec(sandbox: MarketoSandbox, client: httpx.AsyncClient) -> None:
    sandbox.leads.update("1001", {"firstName": "Changed"})
    sandbox.leads.delete("1002")
    sandbox.leads.merge("1003", "1004")
    token = await token_for(client)
    changes = await client.get(
        "/rest/v1/activities/leadchanges.json", params={"nextPageToken": token, "fields": "firstName"}
    )
    validate(changes.json(), "ResponseOfLeadChange")
    assert {a["activityTypeId"] for a in changes.json()["result"]} == {12, 13}
    deleted = await client.get("/rest/v1/activities/deletedleads.json", params={"nextPageToken": token})
    validate(deleted.json(), "ResponseOfActivity")
    assert [a["leadId"] for a in deleted.json()["result"]] == [1002]
    activities = await client.get(
        "/rest/v1/activities.json", params={"nextPageToken": token, "activityTypeIds": "1,2,32,104"}
    )
    validate(activities.json(), "ResponseOfActivity")


async def test_program_membership_and_opportunities_match_spec(client: httpx.AsyncClient) -> None:
    validate((await client.get("/rest/v1/leads/1001/programMembership.json")).json(), "ResponseOfPrograms")
    opportunities = await client.get(
        "/rest/v1/opportunities.json",
        params={"filterType": "externalOpportunityId", "filterValues": "closeloop-deal-0"},
    )
    validate(opportunities.json(), "ResponseOfCustomObject")
    roles = await client.post(
        "/rest/v1/opportunities/roles.json",
        json={"action": "createOrUpdate", "dedupeBy": "dedupeFields",
              "input": [{"externalOpportunityId": "closeloop-deal-0", "leadId": 1005, "role": "Champion"}]},
    )  # fmt: skip
    validate(roles.json(), "ResponseOfCustomObject")
    assert roles.json()["result"][0]["status"] == "created"


async def test_error_bodies_are_http_200_with_string_codes(client: httpx.AsyncClient) -> None:
    response = await client.get("/rest/v1/leads.json", params={"filterType": "id"})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is False
    assert body["errors"] == [{"code": "1003", "message": "filterValues not specified"}]
    assert "#" in body["requestId"]


async def test_token_reused_until_expiry_counts_down() -> None:
    moment = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    sandbox = create_sandbox(seed=1, clock=lambda: moment[0])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="http://mkto") as raw:
        first = (await raw.post("/identity/oauth/token", params=credentials(sandbox))).json()
        moment[0] += timedelta(seconds=600)
        second = (await raw.get("/identity/oauth/token", params=credentials(sandbox))).json()
        moment[0] += timedelta(seconds=3001)
        third = (await raw.get("/identity/oauth/token", params=credentials(sandbox))).json()
        wrong = await raw.get("/identity/oauth/token", params={**credentials(sandbox), "client_secret": "nope"})
    assert (first["expires_in"], second["expires_in"]) == (3600, 3000)
    assert second["access_token"] == first["access_token"]
    assert third["access_token"] != first["access_token"]
    assert third["expires_in"] == 3600
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("state", "code"),
    [("missing", "600"), ("invalid", "601"), ("expired", "602")],
    ids=["600-missing", "601-invalid", "602-expired"],
)
async def test_bad_tokens_answer_600_601_602(
    sandbox: MarketoSandbox, client: httpx.AsyncClient, state: str, code: str
) -> None:
    if state == "missing":
        del client.headers["Authorization"]
    elif state == "invalid":
        client.headers["Authorization"] = "Bearer not-a-token"
    else:
        sandbox.expire_tokens()
    body = (await client.get("/rest/v1/leads/describe.json")).json()
    assert body["errors"][0]["code"] == code


async def test_rate_window_answers_606_and_daily_quota_607(sandbox: MarketoSandbox, client: httpx.AsyncClient) -> None:
    sandbox.knobs.requests_per_window = 2
    codes = [(await client.get("/rest/v1/leads/describe.json")).json().get("errors") for _ in range(3)]
    assert codes[2] is not None
    assert codes[2][0]["code"] == "606"
    sandbox.knobs.requests_per_window, sandbox.knobs.daily_limit = 100, 0
    assert (await client.get("/rest/v1/leads/describe.json")).json()["errors"][0]["code"] == "607"


async def test_sync_per_record_reasons(client: httpx.AsyncClient) -> None:
    existing = (await client.get("/rest/v1/leads.json", params={"filterType": "id", "filterValues": "1001"})).json()
    email = existing["result"][0]["email"]
    body = {
        "action": "createOnly",
        "lookupField": "email",
        "input": [
            {"email": email.upper()},
            {"email": "a@b.org", "fooBar": 1},
            {"email": "c@d.org", "acquisitionProgramId": "x"},
        ],
    }
    created = (await client.post("/rest/v1/leads.json", json=body)).json()["result"]
    assert [r["reasons"][0]["code"] for r in created] == ["1005", "1006", "1003"]
    update = {"action": "updateOnly", "lookupField": "id", "input": [{"id": 99999, "firstName": "X"}]}
    assert (await client.post("/rest/v1/leads.json", json=update)).json()["result"][0]["reasons"][0]["code"] == "1004"
    too_many = {"action": "createOrUpdate", "input": [{"email": f"{i}@x.org"} for i in range(301)]}
    assert (await client.post("/rest/v1/leads.json", json=too_many)).json()["errors"][0]["code"] == "1003"


async def test_duplicate_emails_give_1007(client: httpx.AsyncClient) -> None:
    dupes = {"action": "createDuplicate", "input": [{"email": "twin@example.org"}, {"email": "TWIN@example.org"}]}
    await client.post("/rest/v1/leads.json", json=dupes)
    upsert = {"action": "createOrUpdate", "lookupField": "email", "input": [{"email": "twin@example.org"}]}
    result = (await client.post("/rest/v1/leads.json", json=upsert)).json()["result"][0]
    assert result["reasons"][0]["code"] == "1007"


async def test_concurrency_over_the_cap_answers_615(sandbox: MarketoSandbox, client: httpx.AsyncClient) -> None:
    sandbox.knobs.concurrency_limit = 2
    slow_down(sandbox, 0.05)
    bodies = await asyncio.gather(*(client.get("/rest/v1/leads/describe.json") for _ in range(4)))
    codes = [(b.json().get("errors") or [{}])[0].get("code") for b in bodies]
    assert codes.count("615") == 2


def slow_down(sandbox: MarketoSandbox, seconds: float) -> None:
    """Make every handler take ``seconds`` while it counts as in flight."""
    app = sandbox.app

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(seconds)
        await app(scope, receive, send)

    sandbox.app = slow  # type: ignore[assignment]


async def test_lead_field_is_refused_until_created_through_the_schema_api(client: httpx.AsyncClient) -> None:
    partner = {"name": "closeloopCrmId", "displayName": "closeloop CRM id", "dataType": "string"}
    upsert = {
        "action": "createOrUpdate",
        "lookupField": "email",
        "input": [{"email": "p@x.org", "closeloopCrmId": "003"}],
    }
    refused = (await client.post("/rest/v1/leads.json", json=upsert)).json()["result"][0]
    made = (await client.post("/rest/v1/leads/schema/fields.json", json={"input": [partner]})).json()
    again = (await client.post("/rest/v1/leads/schema/fields.json", json={"input": [partner]})).json()
    bad = {"name": "9lives", "displayName": "Nine", "dataType": "string"}
    invalid = (await client.post("/rest/v1/leads/schema/fields.json", json={"input": [bad]})).json()
    described = (await client.get("/rest/v1/leads/describe2.json")).json()["result"][0]["fields"]
    written = (await client.post("/rest/v1/leads.json", json=upsert)).json()["result"][0]
    assert refused["reasons"][0]["code"] == "1006"
    assert made["result"] == [{"name": "closeloopCrmId", "status": "created"}]
    assert again["result"][0]["status"] == "skipped"
    assert invalid["result"][0]["status"] == "skipped"
    assert "closeloopCrmId" in {f["name"] for f in described}
    assert written["status"] == "created"
