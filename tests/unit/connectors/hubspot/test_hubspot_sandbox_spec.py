"""The HubSpot sandbox's answers validated against HubSpot's official OpenAPI files (public-api-spec-collection)."""

from __future__ import annotations

import copy
import json
from functools import cache
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from closeloop_connectors.hubspot.sandbox import HubSpotSandbox, create_sandbox

from tests.specs import needs_specs, spec_dir

SPECS = spec_dir("hubspot")
pytestmark = needs_specs("hubspot")


@cache
def spec(name: str) -> dict[str, Any]:
    return json.loads((SPECS / name).read_text())


def resolve(node: Any, file: str) -> Any:
    """Inline the spec's local ``$ref``s."""
    if isinstance(node, list):
        return [resolve(item, file) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = spec(file)
        for part in node["$ref"].partition("#")[2].strip("/").split("/"):
            target = target[part]
        return resolve(copy.deepcopy(target), file)
    return {key: resolve(value, file) for key, value in node.items()}


def allow_null_values(schema: Any) -> Any:
    """Where HubSpot's answers differ from its generated spec, on purpose.

    HubSpot answers ``null`` for asked-for properties without a value (and for unlabelled association types),
    which the spec does not mark nullable; and a batch error's ``subCategory`` is a text such as
    ``crm.associations.NO_ASSOCIATIONS_FOUND``, where the spec says object.
    """
    if isinstance(schema, list):
        return [allow_null_values(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: allow_null_values(value) for key, value in schema.items()}
    sub_category = out.get("properties", {}).get("subCategory")
    if isinstance(sub_category, dict) and sub_category.get("type") == "object":
        sub_category["type"] = ["object", "string"]
    for key in ("additionalProperties", "label"):
        inner = out.get(key) if key == "additionalProperties" else out.get("properties", {}).get(key)
        if isinstance(inner, dict) and inner.get("type") == "string":
            inner["type"] = ["string", "null"]
    return out


def response_schema(file: str, path: str, method: str, status: str) -> dict[str, Any]:
    response = spec(file)["paths"][path][method]["responses"][status]
    return allow_null_values(resolve(response["content"]["application/json"]["schema"], file))


def validate(body: Any, file: str, path: str, method: str, status: str = "200") -> None:
    jsonschema.validate(body, response_schema(file, path, method, status), cls=jsonschema.Draft7Validator)


def validate_error(body: Any) -> None:
    schema = resolve(spec("contacts-v3.json")["components"]["schemas"]["Error"], "contacts-v3.json")
    jsonschema.validate(body, schema, cls=jsonschema.Draft7Validator)


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    return create_sandbox(seed=3, people=12, deals=6)


CONTACTS = "/crm/v3/objects/contacts"


async def test_object_answers_match_the_contacts_spec(hubspot: SimpleNamespace, sandbox: HubSpotSandbox) -> None:
    async with hubspot.client(sandbox) as http:
        listing = await http.get(CONTACTS, params={"limit": 5, "properties": "email,phone"})
        validate(listing.json(), "contacts-v3.json", CONTACTS, "get")
        one = await http.get(f"{CONTACTS}/1000000001", params={"associations": "deals"})
        validate(one.json(), "contacts-v3.json", f"{CONTACTS}/{{contactId}}", "get")
        created = await http.post(CONTACTS, json={"properties": {"email": "new@example.org"}})
        assert created.status_code == 201
        validate(created.json(), "contacts-v3.json", CONTACTS, "post", "201")
        body = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "0"}]}],
                "sorts": ["lastmodifieddate"], "properties": ["email"], "limit": 3}  # fmt: skip
        found = await http.post(f"{CONTACTS}/search", json=body)
        validate(found.json(), "contacts-v3.json", f"{CONTACTS}/search", "post")
        merged = await http.post(
            f"{CONTACTS}/merge", json={"primaryObjectId": "1000000002", "objectIdToMerge": "1000000003"}
        )
        validate(merged.json(), "contacts-v3.json", f"{CONTACTS}/merge", "post")
        missing = await http.get(f"{CONTACTS}/42")
        validate_error(missing.json())


async def test_batch_answers_match_the_spec(hubspot: SimpleNamespace, sandbox: HubSpotSandbox) -> None:
    inputs = [
        {"id": "a@example.org", "idProperty": "email", "properties": {"firstname": "A"}, "objectWriteTraceId": "0"},
        {"id": "b@example.org", "idProperty": "email", "properties": {"hs_analytics_source": "X"},
         "objectWriteTraceId": "1"},
    ]  # fmt: skip
    async with hubspot.client(sandbox) as http:
        upserted = await http.post(f"{CONTACTS}/batch/upsert", json={"inputs": inputs})
        assert upserted.status_code == 207
        validate(upserted.json(), "contacts-v3.json", f"{CONTACTS}/batch/upsert", "post", "207")
        wanted = {"inputs": [{"id": "1000000001"}, {"id": "9"}], "properties": ["email"], "propertiesWithHistory": []}
        read = await http.post(f"{CONTACTS}/batch/read", json=wanted)
        assert read.status_code == 207
        validate(read.json(), "contacts-v3.json", f"{CONTACTS}/batch/read", "post", "207")
        deals = await http.post(
            "/crm/v3/objects/deals/batch/create", json={"inputs": [{"properties": {"dealname": "X"}}]}
        )
        assert deals.status_code == 201
        validate(deals.json(), "deals-v3.json", "/crm/v3/objects/0-3/batch/create", "post", "201")
        refused = await http.post(f"{CONTACTS}/batch/upsert", json={"inputs": [{"id": "x"}] * 101})
        validate_error(refused.json())


async def test_metadata_answers_match_the_spec(hubspot: SimpleNamespace, sandbox: HubSpotSandbox) -> None:
    async with hubspot.client(sandbox) as http:
        pipelines = await http.get("/crm/v3/pipelines/deals")
        validate(pipelines.json(), "pipelines-v3.json", "/crm/v3/pipelines/{objectType}", "get")
        properties = await http.get("/crm/v3/properties/contacts")
        validate(properties.json(), "properties-v3.json", "/crm/v3/properties/{objectType}", "get")


async def test_association_answers_match_the_v4_spec(hubspot: SimpleNamespace, sandbox: HubSpotSandbox) -> None:
    base = "/crm/v4/associations/{fromObjectType}/{toObjectType}"
    async with hubspot.client(sandbox) as http:
        made = await http.post(
            "/crm/v4/associations/deals/contacts/batch/associate/default",
            json={"inputs": [{"from": {"id": "2000000001"}, "to": {"id": "1000000004"}}]},
        )
        validate(made.json(), "associations-v4.json", f"{base}/batch/associate/default", "post")
        read = await http.post(
            "/crm/v4/associations/deals/contacts/batch/read", json={"inputs": [{"id": "2000000001"}, {"id": "1"}]}
        )
        assert read.status_code == 207
        validate(read.json(), "associations-v4.json", f"{base}/batch/read", "post", "207")


async def test_auth_and_rate_limit_errors_match_the_error_schema(
    hubspot: SimpleNamespace, sandbox: HubSpotSandbox
) -> None:
    sandbox.knobs.requests_per_window = 1
    async with hubspot.client(sandbox, token="wrong") as wrong:
        validate_error((await wrong.get(CONTACTS)).json())
    async with hubspot.client(sandbox) as http:
        await http.get(CONTACTS)
        limited = await http.get(CONTACTS)
    assert limited.status_code == 429
    validate_error(limited.json())
