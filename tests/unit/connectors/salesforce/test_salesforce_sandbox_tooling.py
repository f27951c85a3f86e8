"""The sandbox's Tooling API CustomField create: closeloop's fields exist only once created."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from closeloop_connectors.salesforce.sandbox import create_sandbox
from closeloop_connectors.salesforce.sandbox.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SalesforceSandbox

TOOLING = "/services/data/v60.0/tooling/sobjects/CustomField"
PARTNER = {"FullName": "Opportunity.Closeloop_Partner_Id__c", "Metadata": {"type": "Text", "length": 255}}


@asynccontextmanager
async def _client(sandbox: SalesforceSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as raw:
        form = {
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
        }
        token = (await raw.post("/services/oauth2/token", data=form)).json()["access_token"]
        raw.headers["Authorization"] = f"Bearer {token}"
        yield raw


async def test_custom_field_is_refused_until_created_then_described_and_written() -> None:
    sandbox = create_sandbox(seed=2, deals=1)
    opportunity = next(sandbox.table("Opportunity").live()).id
    async with _client(sandbox) as http:
        path = f"/services/data/v60.0/sobjects/Opportunity/{opportunity}"
        refused = await http.patch(path, json={"Closeloop_Partner_Id__c": "2000000001"})
        made = await http.post(TOOLING, json=PARTNER)
        again = await http.post(TOOLING, json=PARTNER)
        described = await http.get("/services/data/v60.0/sobjects/Opportunity/describe")
        written = await http.patch(path, json={"Closeloop_Partner_Id__c": "2000000001"})
    assert refused.json()[0]["errorCode"] == "INVALID_FIELD"
    assert (made.status_code, made.json()["success"]) == (201, True)
    assert again.json()[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    assert "Closeloop_Partner_Id__c" in {f["name"] for f in described.json()["fields"]}
    assert written.status_code == 204


async def test_custom_field_names_and_types_are_checked() -> None:
    async with _client(create_sandbox(seed=2)) as http:
        no_suffix = await http.post(TOOLING, json={**PARTNER, "FullName": "Opportunity.Partner"})
        bad_type = await http.post(TOOLING, json={**PARTNER, "Metadata": {"type": "Hologram"}})
        no_object = await http.post(TOOLING, json={**PARTNER, "FullName": "Nope.X__c"})
    assert no_suffix.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert bad_type.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert no_object.json()[0]["errorCode"] == "INVALID_TYPE"
