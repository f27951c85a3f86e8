"""Field history tracking: the sandbox keeps <Object>History rows of tracked fields; the connector reads their times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closeloop_connectors.salesforce import SalesforceConnector
from closeloop_connectors.salesforce.history import latest
from closeloop_connectors.salesforce.sandbox import SalesforceSandbox

from closeloop.model import WriteOp, WriteRequest

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def edit(
    connector: SalesforceConnector, sandbox: SalesforceSandbox, at: datetime, contact_id: str, **fields: str
) -> None:
    sandbox.clock.frozen = at
    (result,) = await connector.write("Contact", [WriteRequest("edit", WriteOp.UPDATE, fields, native_id=contact_id)])
    assert result.ok, result.error


async def test_tracked_fields_have_their_own_change_times_untracked_ones_none(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    contact = next(iter(sandbox.table("Contact").live()))
    await edit(connector, sandbox, START, contact.id, FirstName="Ada")
    await edit(connector, sandbox, START + timedelta(seconds=2), contact.id, Title="Director")
    await edit(connector, sandbox, START + timedelta(seconds=3), contact.id, UTM_Source__c="newsletter")
    times = await connector.field_times("Contact", [contact.id], ["FirstName", "Title", "UTM_Source__c", "Email"])
    assert times == {contact.id: {"FirstName": START, "Title": START + timedelta(seconds=2)}}


async def test_the_history_answers_in_one_query_through_soql(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    ids = [row.id for row in list(sandbox.table("Contact").live())[:5]]
    for i, contact_id in enumerate(ids):
        await edit(connector, sandbox, START + timedelta(seconds=i), contact_id, LastName=f"L{i}")
    await connector.describe("Contact")
    sandbox.stats.reset()
    times = await connector.field_times("Contact", ids, ["LastName"])
    assert {k: v["LastName"] for k, v in times.items()} == {c: START + timedelta(seconds=i) for i, c in enumerate(ids)}
    queries = {label: n for label, n in sandbox.stats.calls.items() if "query" in label}
    assert sum(queries.values()) == 1, sandbox.stats.calls


async def test_an_object_without_field_history_falls_back_to_the_record_rule(connector: SalesforceConnector) -> None:
    assert await connector.field_times("OpportunityContactRole", ["00K000000000001AAA"], ["Role"]) == {}


def test_the_newest_row_of_each_field_wins_whatever_the_order() -> None:
    rows = [
        {"ContactId": "003A", "Field": "FirstName", "CreatedDate": "2026-03-02T09:00:05.000+0000"},
        {"ContactId": "003A", "Field": "FirstName", "CreatedDate": "2026-03-02T09:00:09.000+0000"},
        {"ContactId": "003A", "Field": "FirstName", "CreatedDate": "2026-03-02T09:00:01.000+0000"},
    ]
    assert latest("Contact", rows) == {"003A": {"FirstName": START + timedelta(seconds=9)}}
