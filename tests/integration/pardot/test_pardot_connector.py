"""The Account Engagement connector against its in-process sandbox: the change stream's order and restarts,
per-record write results, lookups, touchpoints and limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from closeloop_connectors.pardot.adapter import PardotConnector, UnsupportedSearch
from closeloop_connectors.pardot.custom_fields import CustomFieldName
from closeloop_connectors.pardot.sandbox import PardotSandbox, create_sandbox
from closeloop_connectors.pardot.settings import PardotSettings

from closeloop.connector import ConnectorContext
from closeloop.http import BudgetExhausted
from closeloop.model import Cursor, CursorKey, FieldType, NativeRecord, WriteOp, WriteRequest, WriteStatus, record_key
from closeloop.testing.clock import FakeClock


@pytest.fixture
def sandbox(clock: FakeClock) -> PardotSandbox:
    """Twelve seeded prospects on a controllable clock."""
    return create_sandbox(seed=9, people=12, clock=clock, custom_fields=True)


@pytest.fixture
async def make_connector(sandbox: PardotSandbox) -> AsyncIterator[Callable[..., PardotConnector]]:
    """Connectors wired in-process to the sandbox."""
    made: list[PardotConnector] = []

    def build(**overrides: Any) -> PardotConnector:
        values: dict[str, Any] = {
            "base_url": "http://pardot.test",
            "auth_url": "http://pardot.test",
            "business_unit_id": sandbox.business_unit_id,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.05,
        }
        settings = PardotSettings(**{**values, **overrides})
        made.append(
            PardotConnector(ConnectorContext("pardot-it", settings, transport=httpx.ASGITransport(app=sandbox)))
        )
        return made[-1]

    yield build
    for connector in made:
        await connector.aclose()


async def read_all(connector: PardotConnector, since: Cursor | None = None) -> list[NativeRecord]:
    return [r async for page in connector.read_changes("prospects", since) for r in page.records]


def keys(records: list[NativeRecord]) -> list[CursorKey]:
    return [record_key(r) for r in records]


async def test_one_second_is_ordered_by_number_across_a_digit_boundary(
    sandbox: PardotSandbox, clock: FakeClock, make_connector: Callable[..., PardotConnector]
) -> None:
    table = sandbox.tables["prospects"]
    stamp = clock.advance(1)
    for row_id in ("998", "999", "1000", "10000"):
        table.insert({"email": f"p{row_id}@example.org"}, row_id=row_id, at=stamp)
    table.restamp([row.id for row in table.live()][:5], stamp)
    records = await read_all(make_connector(page_size=2))
    assert keys(records) == sorted(keys(records))  # v5 sends 998, 999, 1000... within the second
    assert [r.id for r in records if len(r.id) != 4 or r.id == "1000"] == ["998", "999", "1000", "10000"]
    for n, record in enumerate(records):
        later = await read_all(make_connector(page_size=3), record.position)
        assert [r.id for r in later] == [r.id for r in records[n + 1 :]]


async def test_a_read_restarts_when_a_token_sequence_is_cut(
    sandbox: PardotSandbox, clock: FakeClock, make_connector: Callable[..., PardotConnector]
) -> None:
    sandbox.sequence_limit = 4  # v5 stops a sequence at 100,000 records
    table = sandbox.tables["prospects"]
    for row in list(table.live()):
        table.update(row.id, {"notes": "touched"}, at=clock.advance(1))
    records = await read_all(make_connector(page_size=3))
    assert [r.id for r in records] == [row.id for row in sorted(table.live(), key=lambda r: r.key)]
    assert sandbox.stats.calls["GET /api/v5/objects/prospects"] >= 12 // 4 + 1


async def test_one_second_larger_than_a_token_sequence_is_paged_by_id(
    sandbox: PardotSandbox, clock: FakeClock, make_connector: Callable[..., PardotConnector]
) -> None:
    sandbox.sequence_limit = 3
    table = sandbox.tables["prospects"]
    stamp = clock.advance(1)
    ids = [row.id for row in table.live()]
    table.restamp(ids[:10], stamp)  # month-end mass update: ten prospects, one second
    table.update(ids[10], {"notes": "later"}, at=clock.advance(1))
    records = await read_all(make_connector(page_size=2), Cursor(stamp - timedelta(seconds=1)))
    assert [r.id for r in records] == [*sorted(ids[:10]), ids[10]]


async def test_recycled_prospects_come_back_deleted(
    sandbox: PardotSandbox, clock: FakeClock, make_connector: Callable[..., PardotConnector]
) -> None:
    connector = make_connector()
    start = await read_all(connector)
    clock.advance(1)
    deleted = await connector.write("prospects", [WriteRequest("d", WriteOp.DELETE, native_id=start[0].id)])
    assert deleted[0].status is WriteStatus.DELETED
    again = await connector.write("prospects", [WriteRequest("d", WriteOp.DELETE, native_id=start[0].id)])
    assert again[0].status is WriteStatus.DELETED  # already in the recycle bin: done
    later = await read_all(connector, start[-1].position)
    assert [(r.id, r.deleted) for r in later] == [(start[0].id, True)]


async def test_writes_report_each_record_with_v5_codes(
    sandbox: PardotSandbox, make_connector: Callable[..., PardotConnector]
) -> None:
    connector = make_connector()
    existing = next(sandbox.tables["prospects"].live())
    batch = [
        WriteRequest("new", WriteOp.CREATE, {"email": "new.person@example.org", "firstName": "New"}),
        WriteRequest("same", WriteOp.CREATE, {"email": str(existing.fields["email"]).upper(), "company": "Same Inc"}),
        WriteRequest("ro", WriteOp.UPDATE, {"grade": "A"}, native_id=existing.id),
        WriteRequest("ghost", WriteOp.UPDATE, {"firstName": "Nobody"}, native_id="999999"),
        WriteRequest("nomail", WriteOp.CREATE, {"firstName": "Anon"}),
        WriteRequest(
            "bykey", WriteOp.UPSERT, {"salesforceId": "003x", "email": "x@example.org"}, upsert_key="salesforceId"
        ),
    ]
    results = await connector.write("prospects", batch)
    assert [r.ref for r in results] == [w.ref for w in batch]
    assert [r.status for r in results[:2]] == [WriteStatus.CREATED, WriteStatus.UPDATED]
    assert results[1].native_id == existing.id  # a create by an existing email lands on that prospect
    errors = [(r.error.code, r.error.fields, r.error.retryable) for r in results[2:] if r.error]
    assert errors == [
        ("180", ("grade",), False),
        ("3", (), False),
        ("unsupported", (), False),
        ("unsupported", (), False),
    ]


async def test_lookups_by_id_ranges_email_and_salesforce_id(
    sandbox: PardotSandbox, make_connector: Callable[..., PardotConnector]
) -> None:
    connector = make_connector()
    rows = list(sandbox.tables["prospects"].live())
    sandbox.tables["prospects"].update(rows[5].id, {"salesforceId": "00Q000000000042AAA"})
    found = await connector.read("prospects", [rows[0].id, rows[2].id, rows[3].id, "77777"])
    assert sorted(r.id for r in found) == sorted([rows[0].id, rows[2].id, rows[3].id])
    assert sandbox.stats.calls["GET /api/v5/objects/prospects"] == 2  # 1001-1004 in one range, 77777 alone
    by_sf = await connector.search("prospects", "salesforceId", ["00Q000000000042AAA"])
    assert [r.id for r in by_sf] == [rows[5].id]
    with pytest.raises(UnsupportedSearch, match="salesforceId"):
        await connector.search("prospects", "closeloop_id__c", ["x"])


async def test_describe_types_standard_and_custom_fields(make_connector: Callable[..., PardotConnector]) -> None:
    schema = await make_connector().describe("prospects")
    assert schema.fields["closeloop_revenue__c"].type is FieldType.DECIMAL
    assert schema.fields["closeloop_first_won_at__c"].type is FieldType.DATE
    assert schema.fields["grade"].read_only
    assert not schema.fields["source"].read_only


async def test_touchpoints_are_page_views_form_fills_and_email_clicks(
    sandbox: PardotSandbox, make_connector: Callable[..., PardotConnector]
) -> None:
    connector = make_connector()
    prospects = list(sandbox.tables["prospects"].live())
    emailed = next(p for p in prospects if p.fields["source"] == "Email")
    other = next(p for p in prospects if p.fields["source"] != "Email" and p.fields.get("campaignParameter"))
    touches = await connector.touchpoints("prospects", [emailed.id, other.id], None)
    assert {t.native_id for t in touches} == {emailed.id, other.id}
    kinds = {pid: sorted(t.kind for t in touches if t.native_id == pid) for pid in (emailed.id, other.id)}
    assert kinds[emailed.id] == ["email_click", "form_fill", "original_source", "visit"]
    assert kinds[other.id] == ["form_fill", "original_source", "visit"]
    form = next(t for t in touches if t.native_id == other.id and t.kind == "form_fill")
    assert form.campaign == other.fields["campaignParameter"]
    assert form.utm["utm_campaign"] == other.fields["campaignParameter"]
    click = next(t for t in touches if t.kind == "email_click")
    assert (click.channel, click.occurred_at - emailed.created_at) == ("email", timedelta(days=1))


async def test_five_requests_at_once_and_the_daily_limit(
    sandbox: PardotSandbox, make_connector: Callable[..., PardotConnector]
) -> None:
    connector = make_connector()
    emails = [str(row.fields["email"]) for row in sandbox.tables["prospects"].live()]
    found = await connector.search("prospects", "email", emails)
    assert len(found) == 12
    assert sandbox.stats.violations == 0  # twelve queries, never more than five in flight
    sandbox.knobs.daily_limit = sandbox.daily_used
    with pytest.raises(BudgetExhausted, match="122"):
        await connector.read("prospects", [found[0].id])


@dataclass(frozen=True)
class Wanted:
    """A field the setup step asks for (the shape of its owned-field record)."""

    name: str
    type: FieldType
    label: str


async def test_closeloop_fields_are_created_as_custom_fields(clock: FakeClock) -> None:
    bare = create_sandbox(seed=9, people=2, clock=clock, custom_fields=False)
    settings = PardotSettings(
        base_url="http://pardot.test", auth_url="http://pardot.test", business_unit_id=bare.business_unit_id,
        client_id=bare.client_id, client_secret=bare.client_secret,
    )  # fmt: skip
    connector = PardotConnector(ConnectorContext("pardot-it", settings, transport=httpx.ASGITransport(app=bare)))
    try:
        prospect = next(bare.tables["prospects"].live()).id
        refused = await connector.write(
            "prospects", [WriteRequest("w", WriteOp.UPDATE, {"rev__c": 5}, native_id=prospect)]
        )
        assert refused[0].error is not None
        assert refused[0].error.code == "154"  # an unknown field is refused, never dropped
        wanted = [Wanted("rev__c", FieldType.DECIMAL, "closeloop revenue"), Wanted("won__c", FieldType.DATE, "won")]
        await connector.create_fields("prospects", wanted)
        await connector.create_fields("prospects", wanted[:1])  # again: already there, nothing to do
        schema = await connector.describe("prospects")
        assert (schema.fields["rev__c"].type, schema.fields["won__c"].type) == (FieldType.DECIMAL, FieldType.DATE)
        assert {f["type"] for f in bare.custom_fields.values()} == {"Number", "Date"}
        update = WriteRequest("w", WriteOp.UPDATE, {"rev__c": 5, "won__c": "2026-06-15"}, native_id=prospect)
        assert (await connector.write("prospects", [update]))[0].ok
        with pytest.raises(CustomFieldName, match="__c"):
            await connector.create_fields("prospects", [Wanted("closeloop_revenue", FieldType.DECIMAL, "r")])
    finally:
        await connector.aclose()


async def test_a_create_whose_answer_was_lost_is_not_made_twice(
    sandbox: PardotSandbox, make_connector: Callable[..., PardotConnector]
) -> None:
    connector = make_connector(timeout_seconds=0.2)
    await connector.describe("prospects")  # the token is fetched before the fault is armed
    original = sandbox.app

    async def apply_then_calm(scope: Any, receive: Any, send: Any) -> None:
        await original(scope, receive, send)
        sandbox.knobs.fault_timeout_after_apply = 0.0  # only the first create loses its answer

    sandbox.app = apply_then_calm  # type: ignore[assignment]
    sandbox.knobs.timeout_sleep_s, sandbox.knobs.fault_timeout_after_apply = 5.0, 1.0
    before = len(sandbox.tables["prospects"])
    create = WriteRequest("new", WriteOp.CREATE, {"email": "lost.answer@example.org", "firstName": "Once"})
    (result,) = await connector.write("prospects", [create])
    assert result.ok, result.error
    assert sandbox.stats.faults["timeout_after_apply"] == 1
    assert len(sandbox.tables["prospects"]) == before + 1  # the retried upsert found the prospect it made
