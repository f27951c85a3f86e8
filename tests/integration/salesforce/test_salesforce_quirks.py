"""Salesforce quirks, each named after itself: the connector against the in-process sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from closeloop_connectors.salesforce import SalesforceConnector, plugin
from closeloop_connectors.salesforce.sandbox import SalesforceSandbox

from closeloop.http import BudgetExhausted
from closeloop.model import Association, Cursor, FieldType, NativeRecord, OwnedField, WriteOp, WriteRequest, WriteStatus


async def read_all(connector: SalesforceConnector, obj: str, since: Cursor | None = None) -> list[NativeRecord]:
    return [r async for page in connector.read_changes(obj, since) for r in page.records]


def upsert(i: int, **fields: object) -> WriteRequest:
    values = {"LastName": f"Quirk{i}", "Email": f"quirk{i}@example.org", **fields}
    return WriteRequest(f"r{i}", WriteOp.UPSERT, values, upsert_key="Email")


async def api(sandbox: SalesforceSandbox, method: str, path: str, **kwargs: object) -> httpx.Response:
    """A raw REST call with a client-credentials session, for shapes the connector does not use."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as client:
        token = await client.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "closeloop-sandbox",
                "client_secret": "closeloop-sandbox-secret",
            },
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return await client.request(method, f"/services/data/v60.0/{path}", headers=headers, **kwargs)  # type: ignore[arg-type]


async def test_systemmodstamp_not_unique_uses_id_tiebreak(sandbox: SalesforceSandbox, make_connector) -> None:  # type: ignore[no-untyped-def]
    connector = make_connector(page_size=7)
    table = sandbox.table("Contact")
    ids = sorted(row.id for row in table.live())
    stamp = datetime(2026, 3, 31, 23, 59, 59, 250000, tzinfo=UTC)
    table.restamp(ids, stamp)
    records = await read_all(connector, "Contact", Cursor(stamp - timedelta(milliseconds=1), ""))
    assert [r.id for r in records] == ids
    resumed = await read_all(connector, "Contact", records[10].position)
    assert [r.id for r in resumed] == ids[11:]
    assert await read_all(connector, "Contact", records[-1].position) == []


async def test_late_commit_found_by_lookback(sandbox: SalesforceSandbox, connector: SalesforceConnector) -> None:
    records = await read_all(connector, "Contact")
    cursor = records[-1].position
    # A long transaction commits after our read, with a SystemModstamp from when it began: before the cursor.
    late = sandbox.table("Contact").insert(
        {"LastName": "Late", "Email": "late@example.org"}, at=cursor.modified_at - timedelta(seconds=20)
    )
    assert await read_all(connector, "Contact", cursor) == []
    lookback = Cursor(cursor.modified_at - timedelta(minutes=5), "")
    assert late.id in {r.id for r in await read_all(connector, "Contact", lookback)}


async def test_restricted_picklist_rejects_unknown_value(connector: SalesforceConnector) -> None:
    schema = await connector.describe("Contact")
    source = schema.fields["LeadSource"]
    assert source.restricted
    assert source.picklist is not None
    assert {"Organic Search", "Paid Search", "Event", "Web"} <= set(source.picklist)
    results = await connector.write("Contact", [upsert(1, LeadSource="Webinar"), upsert(2, LeadSource="Event")])
    assert results[1].ok
    error = results[0].error
    assert error is not None
    assert error.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert error.fields == ("LeadSource",)
    assert "Webinar" in error.message
    assert not error.retryable


async def test_request_limit_exceeded_stops_calls_against_the_sandbox(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    await connector.describe("Contact")
    sandbox.knobs.daily_limit = sandbox.daily_used  # the org's allocation is spent from now on
    with pytest.raises(BudgetExhausted):
        await read_all(connector, "Contact")
    calls = sandbox.stats.total_calls
    with pytest.raises(BudgetExhausted):
        await connector.read("Contact", ["003000000000001AAA"])
    assert sandbox.stats.total_calls == calls  # refused locally: no call reached Salesforce


async def test_queryall_returns_deleted_and_merged(sandbox: SalesforceSandbox, connector: SalesforceConnector) -> None:
    start = await read_all(connector, "Contact")
    victim, loser, winner = start[3], start[4], start[5]
    deleted = await connector.write("Contact", [WriteRequest("d", WriteOp.DELETE, native_id=victim.id)])
    assert deleted[0].status is WriteStatus.DELETED
    sandbox.table("Contact").merge(loser.id, winner.id)
    later = {r.id: r for r in await read_all(connector, "Contact", start[-1].position)}
    assert later[victim.id].deleted
    assert later[victim.id].merged_into is None
    assert later[loser.id].deleted
    assert later[loser.id].merged_into == winner.id
    assert not later[winner.id].deleted
    # A plain query (read by id) no longer sees them; only queryAll does.
    assert {r.id for r in await connector.read("Contact", [victim.id, loser.id, winner.id])} == {winner.id}


async def test_converted_lead_points_to_contact(sandbox: SalesforceSandbox, connector: SalesforceConnector) -> None:
    leads = await read_all(connector, "Lead")
    lead = leads[0]
    assert not lead.deleted
    assert lead.merged_into is None
    response = await api(sandbox, "GET", "limits")  # any session works; conversion is a sandbox control
    assert response.status_code == 200
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as client:
        converted = await client.post("/__sandbox/salesforce/convert-lead", json={"leadId": lead.id})
    contact_id = converted.json()["contactId"]
    later = await read_all(connector, "Lead", leads[-1].position)
    assert [(r.id, r.deleted, r.merged_into) for r in later] == [(lead.id, True, contact_id)]
    assert later[0].fields["IsConverted"] is True
    contact = await connector.read("Contact", [contact_id])
    assert contact[0].fields["Email"] == lead.fields["Email"]
    refused = await connector.write("Lead", [WriteRequest("u", WriteOp.UPDATE, {"Title": "x"}, native_id=lead.id)])
    assert refused[0].error is not None
    assert refused[0].error.code == "CANNOT_UPDATE_CONVERTED_LEAD"


async def test_upsert_300_multiple_matches(sandbox: SalesforceSandbox, connector: SalesforceConnector) -> None:
    for name in ("Twin", "Twain"):
        sandbox.table("Contact").insert({"LastName": name, "Email": "twins@example.org"})
    single = await api(sandbox, "PATCH", "sobjects/Contact/Email/twins@example.org", json={"Title": "CEO"})
    assert single.status_code == 300
    assert len(single.json()) == 2
    assert all(url.startswith("/services/data/v60.0/sobjects/Contact/003") for url in single.json())
    results = await connector.write("Contact", [upsert(7, Email="TWINS@example.org"), upsert(8)])
    assert results[1].ok
    error = results[0].error
    assert error is not None
    assert error.code == "DUPLICATE_EXTERNAL_ID"
    assert not error.retryable


async def test_upsert_by_closeloop_id_updates_then_answers_200(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    request = WriteRequest(
        "c", WriteOp.UPSERT, {"Closeloop_Id__c": "cl-1", "LastName": "Ext"}, upsert_key="Closeloop_Id__c"
    )
    await connector.create_fields(
        "Contact", [OwnedField("Closeloop_Id__c", FieldType.STRING, "closeloop id", unique=True)]
    )
    first, again = await connector.write("Contact", [request]), await connector.write("Contact", [request])
    assert (first[0].status, again[0].status) == (WriteStatus.CREATED, WriteStatus.UPDATED)
    assert first[0].native_id == again[0].native_id
    created = await api(sandbox, "PATCH", "sobjects/Contact/Closeloop_Id__c/cl-2", json={"LastName": "New"})
    updated = await api(sandbox, "PATCH", "sobjects/Contact/Closeloop_Id__c/cl-2", json={"LastName": "Newer"})
    legacy = await api(sandbox, "PATCH", "sobjects/Contact/Closeloop_Id__c/cl-2", json={"LastName": "Old"})
    assert (created.status_code, created.json()["created"]) == (201, True)
    assert (updated.status_code, updated.json()["created"]) == (200, False)
    assert legacy.status_code == 200


async def test_iswon_and_isclosed_follow_the_stage_and_are_not_updateable(connector: SalesforceConnector) -> None:
    schema = await connector.describe("Opportunity")
    assert schema.won_stages() == {"Closed Won"}
    assert {s.value for s in schema.stages if s.is_closed} == {"Closed Won", "Closed Lost"}
    assert schema.fields["IsWon"].read_only
    assert schema.fields["IsClosed"].read_only
    won = await connector.write(
        "Opportunity",
        [
            WriteRequest(
                "o",
                WriteOp.CREATE,
                {"Name": "Big", "StageName": "Closed Won", "CloseDate": "2026-05-01", "Amount": 5000},
            )
        ],
    )
    assert won[0].native_id is not None
    record = (await connector.read("Opportunity", [won[0].native_id]))[0]
    assert (record.fields["IsWon"], record.fields["IsClosed"], record.fields["Probability"]) == (True, True, 100.0)
    refused = await connector.write(
        "Opportunity", [WriteRequest("w", WriteOp.UPDATE, {"IsWon": False}, native_id=won[0].native_id)]
    )
    assert refused[0].error is not None
    assert refused[0].error.code == "INVALID_FIELD_FOR_INSERT_UPDATE"


async def test_lead_and_contact_are_both_people() -> None:
    assert plugin.objects == {"Lead": "contact", "Contact": "contact", "Opportunity": "deal"}


async def test_contact_roles_link_once(sandbox: SalesforceSandbox, connector: SalesforceConnector) -> None:
    opportunity = next(iter(sandbox.table("Opportunity").live()))
    contacts = [row.id for row in sandbox.table("Contact").live()][:2]
    links = [Association(opportunity.id, c, "Evaluator") for c in contacts]
    first = await connector.associate("Opportunity", links)
    again = await connector.associate("Opportunity", links)
    assert [r.status for r in first] == [WriteStatus.CREATED, WriteStatus.CREATED]
    assert [r.status for r in again] == [WriteStatus.UPDATED, WriteStatus.UPDATED]
    assert [r.native_id for r in first] == [r.native_id for r in again]
    found = await connector.associations("Opportunity", [opportunity.id])
    assert {(a.to_id, a.role) for a in found} >= {(c, "Evaluator") for c in contacts}


async def test_writes_use_collections_of_200(sandbox: SalesforceSandbox, connector: SalesforceConnector) -> None:
    results = await connector.write("Contact", [upsert(1000 + i) for i in range(450)])
    assert all(r.ok for r in results)
    assert sandbox.stats.calls["PATCH /services/data/{version}/composite/sobjects/{sobject}/{key}"] == 3
    assert sandbox.stats.records_written == 450


async def test_expired_query_locator_resumes_from_the_last_page(sandbox: SalesforceSandbox, make_connector) -> None:  # type: ignore[no-untyped-def]
    connector = make_connector(page_size=4)
    expected = [r.id for r in await read_all(connector, "Contact")]
    seen: list[str] = []
    async for page in connector.read_changes("Contact", None):
        seen.extend(r.id for r in page.records)
        sandbox._locators.clear()  # every query cursor expires after each page
    assert seen == expected


async def test_search_ignores_values_soql_cannot_write(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    row = next(iter(sandbox.table("Contact").live()))
    found = await connector.search("Contact", "Email", [row.fields["Email"].upper(), "bad\x00@x.io", ""])
    assert [r.id for r in found] == [row.id]
