"""Zoho's Python SDK (zohocrmsdk8-0) against the Zoho sandbox, unchanged but for its environment's URLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from closeloop_connectors.zoho.sandbox import ZohoSandbox, create_sandbox
from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import FileStore
from zohocrmsdk.src.com.zoho.crm.api import ParameterMap
from zohocrmsdk.src.com.zoho.crm.api import coql as zcoql
from zohocrmsdk.src.com.zoho.crm.api import record as zrecord
from zohocrmsdk.src.com.zoho.crm.api import related_records as related
from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter
from zohocrmsdk.src.com.zoho.crm.api.deal_contact_roles import DealContactRolesOperations
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException
from zohocrmsdk.src.com.zoho.crm.api.fields import FieldsOperations, GetFieldsParam
from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zohocrmsdk.src.com.zoho.crm.api.related_records import GetRelatedRecordsParam, RelatedRecordsOperations

from tests.contract.kit import served_in_thread


@pytest.fixture(scope="module")
def sandbox() -> ZohoSandbox:
    """Twenty-three contacts and four deals with their contact roles."""
    return create_sandbox(seed=61, people=23, deals=4)


@pytest.fixture(scope="module")
def base_url(sandbox: ZohoSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sandbox served once; the SDK initialised against it with the refresh-token grant."""
    folder = tmp_path_factory.mktemp("zoho-sdk")
    with served_in_thread("zoho", sandbox) as url:
        environment = DataCenter.Environment(url, f"{url}/oauth/v2/token", url)
        token = OAuthToken(
            client_id=sandbox.client_id, client_secret=sandbox.client_secret,
            refresh_token=sandbox.refresh_token, find_user=False,
        )  # fmt: skip
        Initializer.initialize(
            environment=environment, token=token, store=FileStore(str(folder / "tokens.csv")), resource_path=str(folder)
        )
        yield url


def params(*pairs: tuple[Any, Any]) -> ParameterMap:
    """A ParameterMap of (Param, value) pairs."""
    built = ParameterMap()
    for param, value in pairs:
        built.add(param, value)
    return built


def record(**values: Any) -> zrecord.Record:
    """An SDK record with the given field values."""
    made = zrecord.Record()
    for name, value in values.items():
        made.add_key_value(name, value)
    return made


def outcomes(answer: Any) -> list[str]:
    """The per-record status of a write's data[]."""
    return [entry.get_status().get_value() for entry in answer.get_object().get_data()]


def test_the_refresh_grant_is_sent_form_encoded_and_a_bad_one_refused(sandbox: ZohoSandbox, base_url: str) -> None:
    assert sandbox.stats.calls["POST /oauth/v2/token"] >= 1
    wrong = OAuthToken(client_id=sandbox.client_id, client_secret=sandbox.client_secret, refresh_token="nope")
    with pytest.raises(SDKException, match="invalid_code"):
        wrong.refresh_access_token(wrong, f"{base_url}/oauth/v2/token")


def test_list_pages_to_the_end(sandbox: ZohoSandbox, base_url: str) -> None:
    operations, page, seen = zrecord.RecordOperations("Contacts"), 1, []
    while True:
        wanted = params((zrecord.GetRecordsParam.fields, "Email"), (zrecord.GetRecordsParam.per_page, 10),
                        (zrecord.GetRecordsParam.page, page))  # fmt: skip
        body = operations.get_records(wanted).get_object()
        seen += [r.get_id() for r in body.get_data()]
        if not body.get_info().get_more_records():
            break
        page += 1
    assert len(seen) == len(set(seen)) == len(sandbox.table("Contacts"))


def test_create_with_a_bad_record_then_get_update_and_delete(sandbox: ZohoSandbox, base_url: str) -> None:
    sandbox.knobs.reject_values = ["REJECT-ME"]
    operations = zrecord.RecordOperations("Contacts")
    wrapper = zrecord.BodyWrapper()
    wrapper.set_data([record(Last_Name="Sdk", Email="sdk.one@example.org"), record(Last_Name="REJECT-ME")])
    made = operations.create_records(wrapper)
    assert made.get_status_code() == 202
    assert outcomes(made) == ["success", "error"]
    new_id = int(made.get_object().get_data()[0].get_details()["id"])
    changed = zrecord.BodyWrapper()
    changed.set_data([record(Title="Buyer")])
    assert outcomes(operations.update_record(new_id, changed)) == ["success"]
    got = operations.get_record(new_id).get_object().get_data()[0]
    assert got.get_key_value("Title") == "Buyer"
    removed = operations.delete_records(params((zrecord.DeleteRecordsParam.ids, str(new_id))))
    assert outcomes(removed) == ["success"]
    deleted = operations.get_deleted_records(params((zrecord.GetDeletedRecordsParam.type, "all")))
    assert new_id in [entry.get_id() for entry in deleted.get_object().get_data()]


def test_upsert_by_duplicate_check_field_updates_once(sandbox: ZohoSandbox, base_url: str) -> None:
    operations = zrecord.RecordOperations("Contacts")
    wrapper = zrecord.BodyWrapper()
    wrapper.set_data([record(Last_Name="Upsert", Email="sdk.upsert@example.org")])
    wrapper.set_duplicate_check_fields(["Email"])
    first = operations.upsert_records(wrapper).get_object().get_data()[0]
    again = operations.upsert_records(wrapper).get_object().get_data()[0]
    assert (first.get_details()["id"], again.get_details()["id"]) == (first.get_details()["id"],) * 2
    assert sandbox.table("Contacts").find("Email", "sdk.upsert@example.org") is not None


def test_search_coql_and_fields(sandbox: ZohoSandbox, base_url: str) -> None:
    email = str(min(sandbox.table("Contacts").live(), key=lambda r: int(r.id)).fields["Email"])
    found = zrecord.RecordOperations("Contacts").search_records(params((zrecord.SearchRecordsParam.email, email)))
    assert [r.get_key_value("Email") for r in found.get_object().get_data()] == [email]
    query = zcoql.BodyWrapper()
    query.set_select_query("select Email from Contacts where Email is not null limit 5")
    rows = zcoql.CoqlOperations().get_records(query).get_object().get_data()
    assert len(rows) == 5
    fields = FieldsOperations().get_fields(params((GetFieldsParam.module, "Contacts"))).get_object().get_fields()
    assert "Email" in {f.get_api_name() for f in fields}


def test_a_deals_contact_roles(sandbox: ZohoSandbox, base_url: str) -> None:
    deal_id = next(d for d, roles in sandbox.contact_roles.items() if roles)
    answer = DealContactRolesOperations().get_associated_contact_roles(int(deal_id))
    listed = {str(contact.get_id()) for contact in answer.get_object().get_data()}
    assert listed == set(sandbox.contact_roles[deal_id])


def test_an_unserved_url_answers_as_zoho_does(sandbox: ZohoSandbox, base_url: str) -> None:
    token = next(iter(sandbox.tokens.issued))
    headers = {"Authorization": f"Zoho-oauthtoken {token}"}
    answer = requests.get(f"{base_url}/crm/v8/no/such/thing", headers=headers, timeout=30)
    assert answer.status_code == 404
    assert answer.json()["code"] == "INVALID_URL_PATTERN"
    assert answer.json()["status"] == "error"


def test_campaign_members_both_ways(sandbox: ZohoSandbox, base_url: str) -> None:
    campaign_id, members = next((c, m) for c, m in sandbox.campaigns.members.items() if m)
    (module, person_id), status = next(iter(members.items()))
    of_campaign = RelatedRecordsOperations(module, "Campaigns").get_related_records(
        int(campaign_id), params((GetRelatedRecordsParam.fields, "Email,Member_Status"))
    )
    listed = {str(r.get_id()): r.get_key_value("Member_Status") for r in of_campaign.get_object().get_data()}
    assert listed[person_id] == status
    wrapper = related.BodyWrapper()
    wrapper.set_data([record(id=int(campaign_id), Member_Status="Opened")])
    changed = RelatedRecordsOperations("Campaigns", module).update_related_records(int(person_id), wrapper)
    assert outcomes(changed) == ["success"]
    assert sandbox.campaigns.members[campaign_id][(module, person_id)] == "Opened"
