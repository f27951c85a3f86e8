"""The sandbox's properties API: an app creates its own properties, and writes to missing ones are refused."""

from __future__ import annotations

from types import SimpleNamespace

from closeloop_connectors.hubspot.sandbox import create_sandbox

from closeloop.model import FieldType, OwnedField

PARTNER = {"name": "closeloop_crm_id", "label": "CRM id", "type": "string", "fieldType": "text",
           "groupName": "dealinformation"}  # fmt: skip


async def test_a_property_is_refused_until_it_is_created_then_written(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=4)
    async with hubspot.client(sandbox) as http:
        refused = await http.post("/crm/v3/objects/deals", json={"properties": {"closeloop_crm_id": "006x"}})
        made = await http.post("/crm/v3/properties/deals", json=PARTNER)
        again = await http.post("/crm/v3/properties/deals", json=PARTNER)
        listed = await http.get("/crm/v3/properties/deals")
        written = await http.post("/crm/v3/objects/deals", json={"properties": {"closeloop_crm_id": "006x"}})
    assert refused.status_code == 400
    assert "PROPERTY_DOESNT_EXIST" in refused.text
    assert made.status_code == 201
    assert made.json()["hubspotDefined"] is False
    assert (again.status_code, again.json()["category"]) == (409, "OBJECT_ALREADY_EXISTS")
    assert "closeloop_crm_id" in {p["name"] for p in listed.json()["results"]}
    assert written.status_code == 201


async def test_a_property_without_its_required_keys_is_a_validation_error(hubspot: SimpleNamespace) -> None:
    async with hubspot.client(create_sandbox(seed=4)) as http:
        answer = await http.post("/crm/v3/properties/contacts", json={"name": "x_1", "type": "string"})
    assert (answer.status_code, answer.json()["category"]) == (400, "VALIDATION_ERROR")
    assert "label" in answer.json()["message"]


async def test_connector_creates_a_unique_key_it_can_then_upsert_by(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=4)
    connector = hubspot.connect(sandbox)
    key = OwnedField("closeloop_id", FieldType.STRING, "closeloop id", unique=True)
    try:
        assert "closeloop_id" not in (await connector.describe("deals")).fields
        await connector.create_fields("deals", [key])
        await connector.create_fields("deals", [key])  # already there: left as it is
        schema = await connector.describe("deals")
    finally:
        await connector.aclose()
    assert "closeloop_id" in schema.fields
    assert sandbox.catalog["deals"]["closeloop_id"].unique
