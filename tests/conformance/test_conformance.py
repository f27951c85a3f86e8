"""The connector conformance kit: every connector passes this suite against its own sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closeloop.connector import Connector
from closeloop.model import Association, Cursor, NativeRecord, WriteOp, WriteRequest
from closeloop.sandbox.kit import SandboxBase

pytestmark = pytest.mark.asyncio


async def read_all(connector: Connector, obj: str, since: Cursor | None = None) -> list[NativeRecord]:
    """Every record of the change stream after ``since``."""
    records: list[NativeRecord] = []
    async for page in connector.read_changes(obj, since):
        records.extend(page.records)
    return records


def assert_ordered_once(records: list[NativeRecord]) -> None:
    keys = [(r.modified_at, r.id) for r in records]
    assert keys == sorted(keys), "pages must be ordered by (modified_at, id)"
    assert len({r.id for r in records}) == len(records), "a record came twice"


def upsert(target: Any, i: int, **extra: Any) -> WriteRequest:
    fields = {**target.new_fields(i), **extra}
    return WriteRequest(ref=f"r{i}", op=WriteOp.UPSERT, fields=fields, upsert_key=target.email_field)


async def test_full_read_returns_every_record(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    records = await read_all(connector, target.contact_object)
    live = [r for r in records if not r.deleted]
    assert len(live) == len(sandbox.table(target.contact_object))
    assert_ordered_once(records)
    assert all(r.modified_at.tzinfo is UTC or r.modified_at.utcoffset() == timedelta(0) for r in records)


async def test_incremental_read_returns_only_later_records(
    target: Any, sandbox: SandboxBase, connector: Connector
) -> None:
    records = await read_all(connector, target.contact_object)
    middle = records[len(records) // 2]
    later = await read_all(connector, target.contact_object, middle.position)
    assert [r.id for r in later] == [r.id for r in records[len(records) // 2 + 1 :]]


async def test_equal_timestamps_across_page_boundary(target: Any, sandbox: SandboxBase, make_connector: Any) -> None:
    connector = make_connector(sandbox, page_size=10)
    table = sandbox.table(target.contact_object)
    ids = [row.id for row in table.live()]
    stamp = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    table.restamp(ids, stamp)
    try:
        before = Cursor(stamp - timedelta(seconds=1), "")
        records = await read_all(connector, target.contact_object, before)
        assert sorted(r.id for r in records) == sorted(ids)
        assert_ordered_once(records)
        resumed = await read_all(connector, target.contact_object, records[12].position)
        assert [r.id for r in resumed] == [r.id for r in records[13:]]
    finally:
        await connector.aclose()


async def test_read_after_write(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    start = await read_all(connector, target.contact_object)
    results = await connector.write(target.contact_object, [upsert(target, 9001), upsert(target, 9002)])
    assert [r.ref for r in results] == ["r9001", "r9002"]
    assert all(r.ok and r.native_id for r in results), results
    ids = [r.native_id for r in results if r.native_id]
    fetched = await connector.read(target.contact_object, ids)
    assert sorted(r.id for r in fetched) == sorted(ids)
    later = await read_all(connector, target.contact_object, start[-1].position)
    assert set(ids) <= {r.id for r in later}


async def test_upsert_twice_creates_once(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    before = len(sandbox.table(target.contact_object))
    first = await connector.write(target.contact_object, [upsert(target, 9100)])
    again = await connector.write(target.contact_object, [upsert(target, 9100)])
    assert first[0].native_id == again[0].native_id
    assert len(sandbox.table(target.contact_object)) == before + 1


async def test_batch_with_one_bad_record(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    sandbox.knobs.reject_values = ["REJECT-ME"]
    batch = [upsert(target, 9200 + i) for i in range(9)]
    bad_field = next(k for k in target.new_fields(0) if k != target.email_field)
    batch.insert(4, upsert(target, 9299, **{bad_field: "REJECT-ME"}))
    results = await connector.write(target.contact_object, batch)
    assert [r.ref for r in results] == [w.ref for w in batch]
    failed = [r for r in results if not r.ok]
    assert [r.ref for r in failed] == ["r9299"]
    assert failed[0].error is not None
    assert failed[0].error.message
    assert not failed[0].error.retryable
    assert sum(1 for r in results if r.ok) == 9


async def test_search_by_email(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    rows = list(sandbox.table(target.contact_object).live())[:3]
    emails = [row.fields[target.email_field] for row in rows]
    found = await connector.search(target.contact_object, target.email_field, [e.upper() for e in emails])
    assert sorted(r.id for r in found) == sorted(row.id for row in rows)


async def test_describe_reports_fields(target: Any, connector: Connector) -> None:
    schema = await connector.describe(target.contact_object)
    assert target.email_field in schema.fields


async def test_429_storm_loses_nothing(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    sandbox.knobs.fault_429 = 0.3
    records = await read_all(connector, target.contact_object)
    results = await connector.write(target.contact_object, [upsert(target, 9300 + i) for i in range(5)])
    sandbox.knobs.fault_429 = 0.0
    assert len([r for r in records if not r.deleted]) >= 25
    assert all(r.ok for r in results)
    assert sandbox.stats.faults["429"] > 0


async def test_limiter_tuned_to_sandbox_has_no_violations(
    target: Any, sandbox: SandboxBase, make_connector: Any
) -> None:
    sandbox.knobs.requests_per_window, sandbox.knobs.window_s = 8, 0.5
    sandbox.knobs.bucket_limits = {}
    connector = make_connector(sandbox, requests_per_window=8, window_seconds=0.5, page_size=2)
    try:
        records = await read_all(connector, target.contact_object)
        assert len(records) >= 25
        assert sandbox.stats.violations == 0
    finally:
        await connector.aclose()


async def test_token_expiry_mid_run(target: Any, sandbox: SandboxBase, make_connector: Any) -> None:
    if not target.token_expires:
        pytest.skip(f"{target.vendor} uses a static token that never expires")
    connector = make_connector(sandbox, page_size=5)
    try:
        records: list[NativeRecord] = []
        async for page in connector.read_changes(target.contact_object, None):
            records.extend(page.records)
            sandbox.expire_tokens()
        assert len([r for r in records if not r.deleted]) == 25
    finally:
        await connector.aclose()


async def test_deletion_is_visible(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    start = await read_all(connector, target.contact_object)
    victim = start[3]
    sandbox.table(target.contact_object).delete(victim.id)
    later = await read_all(connector, target.contact_object, start[-1].position)
    assert [(r.id, r.deleted) for r in later] == [(victim.id, True)]


async def test_merge_is_visible(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    if not target.supports_merge:
        pytest.skip(f"{target.vendor} has no merge")
    start = await read_all(connector, target.contact_object)
    loser, winner = start[1], start[2]
    sandbox.table(target.contact_object).merge(loser.id, winner.id)
    later = {r.id: r for r in await read_all(connector, target.contact_object, start[-1].position)}
    assert later[loser.id].deleted
    assert later[loser.id].merged_into == winner.id
    assert not later[winner.id].deleted


async def test_deal_stages_and_associations(target: Any, sandbox: SandboxBase, connector: Connector) -> None:
    if target.deal_object is None or target.new_deal_fields is None:
        pytest.skip(f"{target.vendor} has no deals")
    schema = await connector.describe(target.deal_object)
    assert schema.won_stages(), "deal stage metadata must say which stages are won"
    contact = (await read_all(connector, target.contact_object))[0]
    created = await connector.write(
        target.deal_object, [WriteRequest(ref="d1", op=WriteOp.CREATE, fields=target.new_deal_fields(1))]
    )
    assert created[0].ok, created[0].error
    deal_id = created[0].native_id
    assert deal_id
    linked = await connector.associate(target.deal_object, [Association(deal_id, contact.id)])
    assert all(r.ok for r in linked), linked
    links = await connector.associations(target.deal_object, [deal_id])
    assert (deal_id, contact.id) in {(a.from_id, a.to_id) for a in links}
