"""The Marketo connector against its in-process sandbox: change-stream windows, writes, touchpoints, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from closeloop_connectors.marketo.adapter import MarketoConnector
from closeloop_connectors.marketo.sandbox import MarketoSandbox, create_sandbox
from closeloop_connectors.marketo.settings import MarketoSettings

from closeloop.connector import ConnectorContext
from closeloop.model import (
    Cursor,
    FieldType,
    NativeRecord,
    OwnedField,
    WriteOp,
    WriteRequest,
    WriteStatus,
    record_key,
)
from closeloop.testing.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """The sandbox's clock."""
    return FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def sandbox(clock: FakeClock) -> MarketoSandbox:
    """Twelve seeded leads on a controllable clock."""
    return create_sandbox(seed=11, people=12, clock=clock)


@pytest.fixture
async def make_connector(sandbox: MarketoSandbox) -> AsyncIterator[Callable[..., MarketoConnector]]:
    """Connectors wired in-process to the sandbox."""
    made: list[MarketoConnector] = []

    def build(**overrides: Any) -> MarketoConnector:
        values: dict[str, Any] = {
            "base_url": "http://marketo.sandbox",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.05,
        }
        settings = MarketoSettings(**{**values, **overrides})
        context = ConnectorContext("marketo-it", settings, transport=httpx.ASGITransport(app=sandbox))
        made.append(MarketoConnector(context))
        return made[-1]

    yield build
    for connector in made:
        await connector.aclose()


async def read_all(connector: MarketoConnector, since: Cursor | None) -> list[NativeRecord]:
    return [r async for page in connector.read_changes("leads", since) for r in page.records]


def keys(records: list[NativeRecord]) -> list[tuple[datetime, str]]:
    return [(r.modified_at, r.id) for r in records]


async def test_lead_changed_again_later_is_carried_not_reordered(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector(page_size=3)
    since = Cursor(clock.advance(1))
    ids = [row.id for row in sandbox.leads.live()]
    sandbox.leads.update(ids[0], {"firstName": "Early"}, at=clock.advance(1))
    for lead_id in ids[1:8]:
        sandbox.leads.update(lead_id, {"company": "Acme"}, at=clock.advance(1))
    sandbox.leads.update(ids[0], {"firstName": "Latest"}, at=clock.advance(1))
    records = await read_all(connector, since)
    assert keys(records) == sorted(keys(records))
    assert [r.id for r in records] == [*ids[1:8], ids[0]]
    assert records[-1].fields["firstName"] == "Latest"


async def test_change_to_an_unwatched_field_still_delivers_the_lead(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector(page_size=2)
    since = Cursor(clock.advance(1))
    ids = [row.id for row in sandbox.leads.live()]
    sandbox.leads.update(ids[0], {"firstName": "Watched"}, at=clock.advance(1))
    sandbox.leads.update(ids[1], {"firstName": "Watched"}, at=clock.advance(1))
    sandbox.leads.update(ids[2], {"firstName": "Watched"}, at=clock.advance(1))
    # closeloopRevenue is not a watched field: no lead-change activity names it, yet updatedAt moves.
    await connector.create_fields("leads", [OwnedField("closeloopRevenue", FieldType.DECIMAL, "Revenue")])
    sandbox.leads.update(ids[0], {"closeloopRevenue": 99.0}, at=clock.advance(1))
    records = await read_all(connector, since)
    assert [r.id for r in records] == [ids[1], ids[2], ids[0]]
    assert records[-1].fields["closeloopRevenue"] == 99.0


async def test_incremental_read_resumes_at_every_position(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector(page_size=4)
    since = Cursor(clock.advance(1))
    stamp = clock.advance(1)
    ids = [row.id for row in sandbox.leads.live()]
    for lead_id in ids[:9]:
        sandbox.leads.update(lead_id, {"leadStatus": "Recycled"}, at=stamp)  # one second for nine leads
    sandbox.leads.delete(ids[9], at=clock.advance(1))
    records = await read_all(connector, since)
    assert len(records) == 10
    for n, record in enumerate(records):
        later = await read_all(connector, record.position)
        assert [r.id for r in later] == [r.id for r in records[n + 1 :]]


async def test_full_read_orders_ids_as_numbers_across_a_digit_boundary(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    sandbox.knobs.enforce_limits = False  # a full read per position: the order is under test, not the limits
    stamp = clock.advance(1)
    for lead_id in ("998", "999"):
        sandbox.leads.insert({"email": f"l{lead_id}@example.org"}, row_id=lead_id, at=stamp)
    sandbox.leads.restamp([row.id for row in sandbox.leads.live()], stamp)  # one second for every lead
    connector = make_connector(page_size=4)
    records = await read_all(connector, None)
    assert [record_key(r) for r in records] == sorted(record_key(r) for r in records)
    assert [r.id for r in records][:3] == ["998", "999", "1001"]  # as text, "1001" < "998"
    for n, record in enumerate(records):
        later = await read_all(connector, record.position)
        assert [r.id for r in later] == [r.id for r in records[n + 1 :]]


async def test_full_read_then_tail_picks_up_changes(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector(page_size=5, scan_gap_batches=4)
    first = await read_all(connector, None)
    assert len(first) == 12
    assert keys(first) == sorted(keys(first))
    sandbox.leads.update(first[0].id, {"title": "CTO"}, at=clock.advance(1))
    sandbox.leads.merge(first[1].id, first[2].id, at=clock.advance(1))
    later = await read_all(connector, first[-1].position)
    assert [(r.id, r.deleted, r.merged_into) for r in later] == [
        (first[0].id, False, None),
        (first[1].id, True, first[2].id),
        (first[2].id, False, None),
    ]


async def test_merge_through_the_api_reports_the_winner(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    since = Cursor(clock.advance(1))
    clock.advance(1)
    body = await connector.api.post("/rest/v1/leads/1005/merge.json?leadIds=1006,1007", None, idempotent=False)
    assert body["success"] is True
    records = {r.id: r for r in await read_all(connector, since)}
    assert records["1006"].merged_into == "1005"
    assert records["1007"].merged_into == "1005"
    assert not records["1005"].deleted


async def test_writes_create_update_reject_and_delete(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    existing = next(sandbox.leads.live())
    batch = [
        WriteRequest("new", WriteOp.CREATE, {"email": "new.person@example.org", "firstName": "New"}),
        WriteRequest("dupe", WriteOp.CREATE, {"email": existing.fields["email"].upper()}),
        WriteRequest("ghost", WriteOp.UPDATE, {"firstName": "Nobody"}, native_id="999999"),
        WriteRequest("bad", WriteOp.UPSERT, {"email": "b@example.org", "fooBar": 1}, upsert_key="email"),
        WriteRequest("ro", WriteOp.UPDATE, {"originalSourceType": "x"}, native_id=existing.id),
    ]
    results = await connector.write("leads", batch)
    assert [r.ref for r in results] == [w.ref for w in batch]
    assert results[0].status is WriteStatus.CREATED
    assert [(r.error.code if r.error else None) for r in results[1:]] == ["1005", "1004", "1006", "1006"]
    deleted = await connector.write("leads", [WriteRequest("del", WriteOp.DELETE, native_id=results[0].native_id)])
    assert deleted[0].status is WriteStatus.DELETED
    assert sandbox.leads.get(str(results[0].native_id)) is None


async def test_revenue_write_back_fields(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    lead_id = next(sandbox.leads.live()).id
    rollup = {
        "closeloopRevenue": 45250.5,
        "closeloopWonDeals": 2,
        "closeloopFirstWonAt": "2026-03-01T10:00:00Z",
        "closeloopLastWonAt": "2026-05-20T16:30:00Z",
        "closeloopCustomerSince": "2026-03-01T10:00:00Z",
    }
    types = (FieldType.DECIMAL, FieldType.NUMBER, FieldType.DATETIME, FieldType.DATETIME, FieldType.DATETIME)
    await connector.create_fields("leads", [OwnedField(n, t, n) for n, t in zip(rollup, types, strict=True)])
    results = await connector.write("leads", [WriteRequest("w", WriteOp.UPDATE, rollup, native_id=lead_id)])
    assert results[0].ok
    schema = await connector.describe("leads")
    assert {schema.fields[name].type.value for name in rollup} == {"decimal", "number", "datetime"}
    assert schema.fields["originalSourceType"].read_only
    [record] = await connector.read("leads", [lead_id])
    assert {name: record.fields[name] for name in rollup} == rollup


async def test_touchpoints_carry_original_source_form_fills_and_programs(
    sandbox: MarketoSandbox, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    lead = next(row for row in sandbox.leads.live() if row.fields.get("utmCampaign"))
    touchpoints = await connector.touchpoints("leads", [lead.id], None)
    kinds = [t.kind for t in touchpoints]
    assert set(kinds) == {"original_source", "web_visit", "form_fill", "program"}
    form = next(t for t in touchpoints if t.kind == "form_fill")
    assert form.utm["utm_campaign"] == lead.fields["utmCampaign"]
    program = next(t for t in touchpoints if t.kind == "program")
    assert program.campaign == lead.fields["utmCampaign"]
    assert program.detail == "Registered"


async def test_touchpoints_ask_at_most_30_leads_per_activity_call(
    sandbox: MarketoSandbox, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    ids = [str(1001 + n) for n in range(12)] + [str(5000 + n) for n in range(40)]
    await connector.touchpoints("leads", ids, None)
    assert sandbox.stats.calls["GET /rest/v1/activities.json"] == 2
    assert sandbox.stats.violations == 0


async def test_615_concurrency_limit_respected(
    sandbox: MarketoSandbox, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    original = sandbox.app

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.02)  # held while in flight, so overlapping calls really overlap
        await original(scope, receive, send)

    sandbox.app = slow  # type: ignore[assignment]
    ids = [row.id for row in sandbox.leads.live()]
    reads = await asyncio.gather(*(connector.read("leads", [ids[n % len(ids)]]) for n in range(40)))
    assert all(len(found) == 1 for found in reads)
    assert sandbox.stats.violations == 0


async def test_615_beyond_a_misconfigured_cap_is_retried(
    sandbox: MarketoSandbox, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector(max_concurrency=20, max_attempts=12, backoff_base_seconds=0.05, backoff_max_seconds=0.2)
    sandbox.knobs.concurrency_limit = 4
    await connector.describe("leads")
    original = sandbox.app

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.02)
        await original(scope, receive, send)

    sandbox.app = slow  # type: ignore[assignment]
    reads = await asyncio.gather(*(connector.read("leads", ["1001"]) for _ in range(12)))
    assert all(len(found) == 1 for found in reads)
    assert sandbox.stats.violations > 0


async def test_data_value_changes_give_each_watched_field_its_change_time(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    since = Cursor(clock.advance(1))
    lead = next(iter(sandbox.leads.live()))
    named_at = clock.advance(1)
    sandbox.leads.update(lead.id, {"firstName": "Ada"}, at=named_at)
    sandbox.leads.update(lead.id, {"company": "Later Inc"}, at=clock.advance(5))
    (record,) = [r for r in await read_all(connector, since) if r.id == lead.id]
    assert record.field_times["firstName"] == named_at  # not the lead's updatedAt, moved by the later edit
    assert record.modified_at > named_at


async def test_program_status_set_through_the_api_streams_as_a_touch_with_its_programs_channel(
    sandbox: MarketoSandbox, clock: FakeClock, make_connector: Callable[..., MarketoConnector]
) -> None:
    connector = make_connector()
    lead = next(iter(sandbox.leads.live())).id
    before = [page async for page in connector.touch_changes(None)]
    start = before[-1].last
    path = "/rest/asset/v1/programs.json"
    folder = '{"id": 15, "type": "Folder"}'
    made = await connector.api.http.request(
        "POST", path, data={"name": "Q3 webinar", "type": "Event", "channel": "Webinar", "folder": folder},
        idempotent=False, endpoint=path,
    )  # fmt: skip
    program = made.json()["result"][0]["id"]
    browsed = await connector.api.get(path, {"filterType": "id", "filterValues": str(program)})
    clock.advance(60)
    body = {"status": "Registered", "input": [{"id": int(lead)}, {"id": 999999}]}
    answer = await connector.api.post(f"/rest/v1/leads/programs/{program}/status.json", body, idempotent=False)
    again = await connector.api.post(f"/rest/v1/leads/programs/{program}/status.json", body, idempotent=False)
    pages = [page async for page in connector.touch_changes(start)]

    assert [p["channel"] for p in browsed["result"]] == ["Webinar"]
    assert [r["status"] for r in answer["result"]] == ["updated", "skipped"]
    assert [r["status"] for r in again["result"]] == ["skipped", "skipped"]  # no change, no activity
    (touch,) = [t for page in pages for t in page.touches]
    assert (touch.native_id, touch.kind, touch.occurred_at) == (lead, "program", clock.now.replace(microsecond=0))
    assert (touch.channel, touch.campaign, touch.detail) == ("events", "Q3 webinar", "Registered")
    assert [page async for page in connector.touch_changes(pages[-1].last)] == []
