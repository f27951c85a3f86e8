"""Conditional updates: up to 25 updates in one Composite call, each refused if its record changed since the read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closeloop_connectors.salesforce import SalesforceConnector
from closeloop_connectors.salesforce.sandbox import SalesforceSandbox

from closeloop.model import MODIFIED_SINCE_READ, WriteOp, WriteRequest, WriteStatus

READ_AT = datetime(2026, 3, 2, 9, 0, 0, 400000, tzinfo=UTC)


def update(contact_id: str, since: datetime | None, **fields: str) -> WriteRequest:
    return WriteRequest(f"u:{contact_id}", WriteOp.UPDATE, fields, native_id=contact_id, unmodified_since=since)


async def test_an_unchanged_record_is_updated_and_an_edited_one_refused_in_one_call(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    calm, edited = [row.id for row in list(sandbox.table("Contact").live())[:2]]
    sandbox.clock.frozen = READ_AT
    await connector.write("Contact", [update(calm, None, Title="x"), update(edited, None, Title="x")])
    sandbox.clock.frozen = READ_AT + timedelta(seconds=30)  # a user edits one of them after closeloop read both
    await connector.write("Contact", [update(edited, None, FirstName="Bea")])
    sandbox.clock.frozen = READ_AT + timedelta(seconds=60)
    sandbox.stats.reset()
    results = await connector.write(
        "Contact", [update(calm, READ_AT, FirstName="Ada"), update(edited, READ_AT, FirstName="Ada")]
    )
    assert [r.status for r in results] == [WriteStatus.UPDATED, WriteStatus.FAILED]
    assert results[1].error is not None
    assert results[1].error.code == MODIFIED_SINCE_READ
    assert results[1].error.retryable
    assert sandbox.table("Contact").get(calm).fields["FirstName"] == "Ada"
    assert sandbox.table("Contact").get(edited).fields["FirstName"] == "Bea"  # the user's edit stands
    assert sum(sandbox.stats.calls.values()) == 1, sandbox.stats.calls


async def test_the_same_second_counts_as_unmodified_as_salesforce_keeps_whole_seconds(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    contact = next(iter(sandbox.table("Contact").live())).id
    sandbox.clock.frozen = READ_AT
    await connector.write("Contact", [update(contact, None, Title="x")])
    sandbox.clock.frozen = READ_AT + timedelta(seconds=5)
    (result,) = await connector.write("Contact", [update(contact, READ_AT, Title="y")])
    assert result.ok, result.error


async def test_more_than_one_composite_call_goes_as_a_plain_collection_update(
    connector: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    ids = [row.id for row in list(sandbox.table("Contact").live())[:26]]
    sandbox.clock.frozen = READ_AT + timedelta(minutes=5)
    await connector.describe("Contact")
    sandbox.stats.reset()
    results = await connector.write("Contact", [update(i, READ_AT, Title="z") for i in ids])
    assert all(r.ok for r in results)
    calls = list(sandbox.stats.calls)
    assert calls == [k for k in calls if "composite/sobjects" in k], calls
