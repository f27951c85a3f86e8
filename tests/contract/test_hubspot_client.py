"""HubSpot's Python client (hubspot-api-client) against the HubSpot sandbox, unchanged but for its host."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from closeloop_connectors.hubspot.sandbox import HubSpotSandbox, create_sandbox
from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.crm.deals import SimplePublicObjectInputForCreate

from tests.contract.kit import base_url_fixture


@pytest.fixture(scope="module")
def sandbox() -> HubSpotSandbox:
    """Twenty-five contacts and five deals."""
    return create_sandbox(seed=41, people=25, deals=5)


base_url = base_url_fixture("hubspot")  # served once for the module: the client blocks


@pytest.fixture
def client(sandbox: HubSpotSandbox, base_url: str) -> HubSpot:
    """A client on an OAuth access token from the refresh-token grant."""
    token = HubSpot(host=base_url).oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        refresh_token=sandbox.refresh_token,
    )
    return HubSpot(access_token=token.access_token, host=base_url)


def no_nulls(results: list[Any]) -> bool:
    """Whether every returned property has a value."""
    return all(value is not None for result in results for value in result.properties.values())


def test_a_bad_refresh_token_is_refused(sandbox: HubSpotSandbox, base_url: str) -> None:
    with pytest.raises(Exception, match="400") as refused:
        HubSpot(host=base_url).oauth.tokens_api.create(
            grant_type="refresh_token", client_id=sandbox.client_id,
            client_secret=sandbox.client_secret, refresh_token="not-it",
        )  # fmt: skip
    assert "BAD_REFRESH_TOKEN" in str(refused.value)


def test_get_all_pages_to_the_end(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    contacts = client.crm.contacts.get_all(properties=["email"])
    assert len(contacts) == len(sandbox.table("contacts"))


def test_batch_create_with_a_bad_record_answers_only_set_properties(client: HubSpot) -> None:
    inputs = [
        {"properties": {"email": "batch.one@example.org", "firstname": "One"}, "associations": []},
        {"properties": {"email": "batch.two@example.org", "no_such_property": "x"}, "associations": []},
    ]
    made = client.crm.contacts.batch_api.create(
        batch_input_simple_public_object_batch_input_for_create=BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=inputs
        )
    )
    assert [r.properties["email"] for r in made.results] == ["batch.one@example.org"]
    assert made.num_errors == 1
    assert made.errors[0].category == "VALIDATION_ERROR"
    assert no_nulls(made.results)


def test_batch_update_and_upsert_answer_only_set_properties(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    first = min(sandbox.table("contacts").live(), key=lambda r: int(r.id))
    updated = client.crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": first.id, "properties": {"jobtitle": "Buyer"}}]
        )
    )
    upserted = client.crm.contacts.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[{"id": "upsert.one@example.org", "idProperty": "email", "properties": {"lastname": "Up"}}]
        )
    )
    assert updated.results[0].properties["jobtitle"] == "Buyer"
    assert upserted.results[0].properties["lastname"] == "Up"
    assert no_nulls(updated.results)
    assert no_nulls(upserted.results)


def test_labelled_association_create_read_and_archive(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    deal = client.crm.deals.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={"dealname": "Labelled"})
    )
    contact = min(sandbox.table("contacts").live(), key=lambda r: int(r.id)).id
    v4 = client.crm.associations.v4.basic_api
    spec = [AssociationSpec(association_category="USER_DEFINED", association_type_id=101)]
    made = v4.create("deals", deal.id, "contacts", contact, association_spec=spec)
    assert (made.from_object_type_id, made.to_object_type_id, made.labels) == ("0-3", "0-1", ["Decision maker"])
    listed = v4.get_page("deals", deal.id, "contacts")
    kinds = {(t.category, t.type_id, t.label) for t in listed.results[0].association_types}
    assert kinds == {("HUBSPOT_DEFINED", 3, None), ("USER_DEFINED", 101, "Decision maker")}
    back = v4.get_page("contacts", contact, "deals")
    assert ("USER_DEFINED", 102) in {(t.category, t.type_id) for r in back.results for t in r.association_types}
    v4.archive("deals", deal.id, "contacts", contact)
    assert v4.get_page("deals", deal.id, "contacts").results == []


def test_an_unknown_association_type_is_refused(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    deal, contact = (min(sandbox.table(t).live(), key=lambda r: int(r.id)).id for t in ("deals", "contacts"))
    spec = [AssociationSpec(association_category="USER_DEFINED", association_type_id=999)]
    with pytest.raises(Exception, match="400"):
        client.crm.associations.v4.basic_api.create("deals", deal, "contacts", contact, association_spec=spec)


def test_a_missing_record_is_object_not_found(client: HubSpot) -> None:
    with pytest.raises(ApiException) as missing:
        client.crm.contacts.basic_api.get_by_id("42")
    assert missing.value.status == 404
    assert '"category":"OBJECT_NOT_FOUND"' in str(missing.value.body)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/crm/v3/nosuch", 404), ("PUT", "/crm/v3/objects/contacts/search", 405)],
    ids=["unknown-path", "unknown-method"],
)
def test_unserved_paths_answer_in_hubspots_error_body(
    sandbox: HubSpotSandbox, base_url: str, method: str, path: str, status: int
) -> None:
    headers = {"Authorization": f"Bearer {sandbox.private_app_token}"}
    answer = httpx.request(method, base_url + path, headers=headers)
    body: dict[str, Any] = answer.json()
    assert answer.status_code == status
    assert body["status"] == "error"
    assert {"message", "correlationId", "category"} <= set(body)
