"""The Zoho connector against its in-process sandbox: behaviour beyond the conformance kit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from closeloop_connectors.zoho.adapter import ZohoConnector
from closeloop_connectors.zoho.sandbox import ZohoSandbox, create_sandbox
from closeloop_connectors.zoho.schema import MissingFieldError
from closeloop_connectors.zoho.settings import ZohoSettings

from closeloop.connector import ConnectorContext
from closeloop.http import HttpError
from closeloop.model import Association, Cursor, FieldType, NativeRecord, OwnedField, WriteOp, WriteRequest, WriteStatus


def connect(sandbox: ZohoSandbox, **overrides: Any) -> ZohoConnector:
    settings = ZohoSettings(
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        refresh_token=sandbox.refresh_token,
        auth_url=sandbox.base_url,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.02,
        **overrides,
    )
    context = ConnectorContext(system="zoho", settings=settings, transport=httpx.ASGITransport(app=sandbox))
    return ZohoConnector(context)


async def read_all(connector: ZohoConnector, obj: str, since: Cursor | None = None) -> list[NativeRecord]:
    return [record async for page in connector.read_changes(obj, since) for record in page.records]


@pytest.fixture
def sandbox() -> ZohoSandbox:
    return create_sandbox(seed=5, people=20, deals=8)


@pytest.fixture
async def connector(sandbox: ZohoSandbox) -> AsyncIterator[ZohoConnector]:
    conn = connect(sandbox)
    yield conn
    await conn.aclose()


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/Los_Angeles", "Australia/Adelaide", "UTC"])
async def test_org_time_zone_offsets_read_back_as_utc(zone: str) -> None:
    sandbox = create_sandbox(seed=1, people=6, org_timezone=zone)
    # Across the US DST change (2026-03-08 02:00 local) the org's offset moves from -08:00 to -07:00.
    stamps = [datetime(2026, 3, 8, 9, 59, 59, tzinfo=UTC), datetime(2026, 3, 8, 10, 0, 1, tzinfo=UTC)]
    rows = list(sandbox.table("Contacts").live())
    for row, stamp in zip(rows[:2], stamps, strict=True):
        sandbox.table("Contacts").restamp([row.id], stamp)
    conn = connect(sandbox)
    try:
        records = {r.id: r for r in await read_all(conn, "Contacts")}
    finally:
        await conn.aclose()
    assert [records[row.id].modified_at for row in rows[:2]] == stamps
    assert all(r.modified_at.utcoffset() == timedelta(0) for r in records.values())


async def test_many_records_in_one_second_resume_by_id(sandbox: ZohoSandbox) -> None:
    table = sandbox.table("Contacts")
    ids = [row.id for row in table.live()]
    stamp = datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC)
    for number, row_id in enumerate(ids):  # sub-second differences Zoho never shows
        table.restamp([row_id], stamp + timedelta(microseconds=997 - number))
    conn = connect(sandbox, page_size=3)
    try:
        records = await read_all(conn, "Contacts", Cursor(stamp - timedelta(seconds=1)))
        assert [r.id for r in records] == sorted(ids, key=int)
        resumed = await read_all(conn, "Contacts", records[7].position)
        assert [r.id for r in resumed] == [r.id for r in records[8:]]
    finally:
        await conn.aclose()


async def test_module_without_modified_time_fails_before_any_query(sandbox: ZohoSandbox) -> None:
    conn = connect(sandbox)
    try:
        with pytest.raises(MissingFieldError, match=r"'Partner_Referrals'.*'Modified_Time'"):
            await read_all(conn, "Partner_Referrals")
    finally:
        await conn.aclose()
    assert sandbox.stats.calls["POST /crm/v8/coql"] == 0


async def test_write_of_250_upserts_takes_three_calls(sandbox: ZohoSandbox, connector: ZohoConnector) -> None:
    batch = [
        WriteRequest(
            ref=f"r{i}",
            op=WriteOp.UPSERT,
            upsert_key="Closeloop_Id",
            fields={"Last_Name": f"Bulk {i}", "Closeloop_Id": f"cl-{i}"},
        )
        for i in range(250)
    ]
    await connector.create_fields(
        "Contacts", [OwnedField("Closeloop_Id", FieldType.STRING, "closeloop id", unique=True)]
    )
    results = await connector.write("Contacts", batch)
    assert sandbox.stats.calls["POST /crm/v8/{module}/upsert"] == 3
    assert all(r.status is WriteStatus.CREATED for r in results)
    again = await connector.write("Contacts", batch[:5])
    assert [r.status for r in again] == [WriteStatus.UPDATED] * 5
    assert [r.native_id for r in again] == [r.native_id for r in results[:5]]


async def test_restricted_stage_is_rejected_per_record(connector: ZohoConnector) -> None:
    batch = [
        WriteRequest(ref="ok", op=WriteOp.CREATE, fields={"Deal_Name": "A", "Stage": "Closed Won"}),
        WriteRequest(ref="bad", op=WriteOp.CREATE, fields={"Deal_Name": "B", "Stage": "Won-ish"}),
    ]
    results = await connector.write("Deals", batch)
    assert results[0].ok
    assert results[1].error is not None
    assert (results[1].error.code, results[1].error.fields) == ("INVALID_DATA", ("Stage",))


async def test_stage_metadata_knows_won_and_lost(connector: ZohoConnector) -> None:
    schema = await connector.describe("Deals")
    assert schema.won_stages() == {"Closed Won"}
    closed_lost = {s.value for s in schema.stages if s.is_closed and not s.is_won}
    assert closed_lost == {"Closed Lost", "Closed Lost to Competition"}
    assert schema.fields["Modified_Time"].read_only


async def merge(connector: ZohoConnector, module: str, master: str, body: dict[str, Any]) -> httpx.Response:
    """Zoho's Merge Records API, called with the connector's credentials."""
    url = f"{connector.settings.api_url}/crm/v8/{module}/{master}/actions/merge"
    return await connector.http.request("POST", url, json=body)


async def test_a_merge_through_the_api_deletes_the_child_for_good_and_moves_its_deals(
    sandbox: ZohoSandbox, connector: ZohoConnector
) -> None:
    start = await read_all(connector, "Contacts")
    deal_id, deal = next((r.id, r) for r in sandbox.table("Deals").live() if r.fields.get("Contact_Name"))
    child = str(deal.fields["Contact_Name"]["id"])
    master = next(r.id for r in start if r.id != child)
    title = sandbox.table("Contacts").get(child).fields.get("Title")  # type: ignore[union-attr]
    roles_before = {d for d, roles in sandbox.contact_roles.items() if child in roles}
    deal_modified = deal.modified_at
    body = {"merge": [{"data": [{"id": child, "_fields": [{"api_name": "Title"}]}]}]}
    answer = await merge(connector, "Contacts", master, body)
    assert answer.status_code == 200
    assert answer.json()["merge"][0]["code"] == "SUCCESS"
    later = {r.id: r for r in await read_all(connector, "Contacts", start[-1].position)}
    assert later[child].deleted
    assert later[child].merged_into is None  # Zoho's deleted list never names the master
    assert later[child].fields["type"] == "permanent"  # merged away: deleted for good, not in the recycle bin
    assert later[master].fields.get("Title") == title  # the master took the child's field the merge named
    (link,) = await connector.associations("Deals", [deal_id])
    assert link.to_id == master
    assert sandbox.table("Deals").get(deal_id).modified_at == deal_modified  # type: ignore[union-attr]
    assert all(master in sandbox.contact_roles[d] and child not in sandbox.contact_roles[d] for d in roles_before)


async def test_merge_refusals(sandbox: ZohoSandbox, connector: ZohoConnector) -> None:
    ids = [r.id for r in sandbox.table("Contacts").live()][:4]
    read_only = [{"id": ids[1], "_fields": [{"api_name": "Created_Time"}]}]
    bad = {
        "unknown master": ("Contacts", "1", {"merge": [{"data": [{"id": ids[1]}]}]}),
        "child is the master": ("Contacts", ids[0], {"merge": [{"data": [{"id": ids[0]}]}]}),
        "three children": ("Contacts", ids[0], {"merge": [{"data": [{"id": i} for i in ids[1:4]]}]}),
        "read-only field": ("Contacts", ids[0], {"merge": [{"data": read_only}]}),
        "two merges": ("Contacts", ids[0], {"merge": [{"data": [{"id": ids[1]}]}, {"data": [{"id": ids[2]}]}]}),
    }
    for case, (module, master, body) in bad.items():
        with pytest.raises(HttpError) as refused:
            await merge(connector, module, master, body)
        assert refused.value.status == 400, case
    assert all(sandbox.table("Contacts").get(i) is not None for i in ids)  # nothing merged by a refused call


async def test_contact_roles_add_to_the_contact_name_link(sandbox: ZohoSandbox) -> None:
    deal_id, roles = next((d, r) for d, r in sandbox.contact_roles.items() if len(r) > 1)
    conn = connect(sandbox, contact_roles=True)
    try:
        links = await conn.associations("Deals", [deal_id])
        linked = await conn.associate("Deals", [Association(deal_id, next(iter(roles)))])
    finally:
        await conn.aclose()
    assert {a.to_id for a in links} == set(roles)
    assert linked[0].ok
