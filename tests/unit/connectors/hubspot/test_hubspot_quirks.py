"""One test per HubSpot quirk the connector and its sandbox handle, named after the quirk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from closeloop_connectors.hubspot import HubSpotConnector
from closeloop_connectors.hubspot.sandbox import HubSpotSandbox, create_sandbox

from closeloop.model import Cursor, FieldType, NativeRecord, OwnedField, WriteOp, WriteRequest, parse_utc

STAMP = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)


async def read_all(connector: HubSpotConnector, obj: str, since: Cursor | None = None) -> list[NativeRecord]:
    return [r async for page in connector.read_changes(obj, since) for r in page.records]


def upsert(i: int, **fields: Any) -> WriteRequest:
    return WriteRequest(f"r{i}", WriteOp.UPSERT, {"email": f"person.{i}@example.org", **fields}, upsert_key="email")


def search_body(**extra: Any) -> dict[str, Any]:
    return {"filterGroups": [], "sorts": ["hs_object_id"], "properties": ["email"], "limit": 100, **extra}


def ordered_once(records: list[NativeRecord]) -> bool:
    keys = [(r.modified_at, int(r.id)) for r in records]
    return keys == sorted(keys) and len({r.id for r in records}) == len(records)


async def test_search_10000_cap_answers_400_past_it(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=1, people=3)
    async with hubspot.client(sandbox) as http:
        last = await http.post("/crm/v3/objects/contacts/search", json=search_body(after="9900"))
        past = await http.post("/crm/v3/objects/contacts/search", json=search_body(after="10000"))
    assert last.status_code == 200
    assert past.status_code == 400
    assert past.json()["category"] == "VALIDATION_ERROR"
    assert "10000" in past.json()["message"]


async def test_search_10000_cap_never_reached_by_the_change_stream(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=2)
    contacts = sandbox.table("contacts")
    for i in range(10_250):  # one distinct time each: only the cap, not a shared stamp, is in play
        contacts.insert({"email": f"p{i}@example.org"}, at=STAMP - timedelta(seconds=i))
    statuses: list[int] = []
    connector = hubspot.connect(
        sandbox,
        properties={"contacts": ["email", "lastmodifieddate"]},
        on_response=lambda _system, response: statuses.append(response.status_code),
        **hubspot.fast_search(sandbox),
    )
    try:
        records = await read_all(connector, "contacts")
    finally:
        await connector.aclose()
    assert len(records) == 10_250
    assert ordered_once(records)
    assert 400 not in statuses


async def test_same_timestamp_12000_records_read_in_full_and_resumable(hubspot: SimpleNamespace) -> None:
    """G8: a window with more than 10,000 matches, all on one timestamp, ends and returns everything."""
    sandbox = create_sandbox(seed=3)
    sandbox.knobs.same_timestamp = "2026-03-31T23:59:59Z"
    overrides = hubspot.fast_search(sandbox)
    connector = hubspot.connect(sandbox, properties={"contacts": ["email", "lastmodifieddate"]}, **overrides)
    try:
        written = await connector.write("contacts", [upsert(i) for i in range(12_000)])
        assert all(r.ok for r in written)
        records = await read_all(connector, "contacts", Cursor(STAMP - timedelta(seconds=1)))
        assert len(records) == 12_000
        assert {r.modified_at for r in records} == {STAMP}
        assert ordered_once(records)
        resumed = await read_all(connector, "contacts", records[10_500].position)
        assert [r.id for r in resumed] == [r.id for r in records[10_501:]]
    finally:
        await connector.aclose()


async def test_batch_results_come_back_unordered_and_map_by_trace_id(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=4)
    sandbox.knobs.reject_values = ["REJECT-ME"]
    connector = hubspot.connect(sandbox)
    batch = [upsert(i, firstname="REJECT-ME" if i in (3, 40) else f"F{i}") for i in range(60)]
    try:
        results = await connector.write("contacts", batch)
    finally:
        await connector.aclose()
    assert [r.ref for r in results] == [w.ref for w in batch]
    assert [r.ref for r in results if not r.ok] == ["r3", "r40"]
    table = sandbox.table("contacts")
    for request, result in zip(batch, results, strict=True):
        if result.ok:
            row = table.get(str(result.native_id))
            assert row is not None
            assert row.fields["email"] == request.fields["email"]


async def test_hs_analytics_source_is_read_only(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=5, people=2)
    connector = hubspot.connect(sandbox)
    row = next(sandbox.table("contacts").live())
    before = row.fields["hs_analytics_source"]
    try:
        schema = await connector.describe("contacts")
        results = await connector.write(
            "contacts",
            [WriteRequest("x", WriteOp.UPDATE, {"hs_analytics_source": "PAID_SEARCH"}, native_id=row.id)],
        )
    finally:
        await connector.aclose()
    assert schema.fields["hs_analytics_source"].read_only
    assert schema.fields["hs_analytics_source_data_1"].read_only
    assert not schema.fields["utm_source"].read_only
    error = results[0].error
    assert error is not None
    assert (error.code, error.retryable, error.fields) == ("READ_ONLY_VALUE", False, ("hs_analytics_source",))
    assert row.fields["hs_analytics_source"] == before


async def test_entering_a_lifecycle_stage_stamps_its_read_only_date_once(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=5)
    connector = hubspot.connect(sandbox)
    day = lambda n: datetime(2026, 2, n, 9, tzinfo=UTC)  # noqa: E731 - a tiny date helper
    mql = "hs_lifecyclestage_marketingqualifiedlead_date"

    async def write(request: WriteRequest, at: datetime) -> str:
        sandbox.clock.frozen = at
        (result,) = await connector.write("contacts", [request])
        assert result.ok, result.error
        return str(result.native_id)

    try:
        made = await write(upsert(1, lifecyclestage="lead"), day(1))
        await write(WriteRequest("u", WriteOp.UPDATE, {"lifecyclestage": "marketingqualifiedlead"}, made), day(3))
        await write(WriteRequest("u", WriteOp.UPDATE, {"lifecyclestage": "lead"}, made), day(5))
        await write(WriteRequest("u", WriteOp.UPDATE, {"lifecyclestage": "marketingqualifiedlead"}, made), day(7))
        (refused,) = await connector.write("contacts", [WriteRequest("x", WriteOp.UPDATE, {mql: "2020-01-01"}, made)])
        schema = await connector.describe("contacts")
    finally:
        await connector.aclose()
    row = sandbox.table("contacts").get(made)
    assert row is not None
    # a stage entered again keeps the day it was first entered, as HubSpot's "Became a ... date" does
    assert (row.fields["hs_lifecyclestage_lead_date"], row.fields[mql]) == (
        "2026-02-01T09:00:00.000Z",
        "2026-02-03T09:00:00.000Z",
    )
    assert refused.error is not None
    assert refused.error.code == "READ_ONLY_VALUE"
    assert schema.fields[mql].read_only


def test_seeded_contacts_entered_each_stage_up_to_their_own() -> None:
    sandbox = create_sandbox(seed=5, people=40)
    order = ["lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"]
    for row in sandbox.table("contacts").live():
        stage = row.fields["lifecyclestage"]
        dates = [row.fields.get(f"hs_lifecyclestage_{s}_date") for s in order]
        known = [d for d in dates if d]
        assert known == sorted(known)  # entered in funnel order
        assert dates[: order.index(stage) + 1 if stage in order else 0] == known
        assert all(parse_utc(d) >= row.created_at for d in known)  # and never before the contact existed


async def test_emails_stored_lower_case(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=6)
    connector = hubspot.connect(sandbox)
    try:
        first = await connector.write("contacts", [upsert(1, email="Mixed.Case@Example.COM")])
        again = await connector.write("contacts", [upsert(1, email="MIXED.case@example.com", firstname="B")])
        found = await connector.search("contacts", "email", ["mixed.CASE@example.com"])
    finally:
        await connector.aclose()
    assert first[0].native_id == again[0].native_id
    assert len(sandbox.table("contacts")) == 1
    assert [r.fields["email"] for r in found] == ["mixed.case@example.com"]


async def test_refresh_before_expiry(hubspot: SimpleNamespace) -> None:
    now = [datetime(2026, 5, 1, 12, 0, tzinfo=UTC)]
    sandbox = create_sandbox(seed=7, people=3, clock=lambda: now[0])
    statuses: list[int] = []
    connector = hubspot.connect(
        sandbox,
        clock=lambda: now[0],
        on_response=lambda _system, response: statuses.append(response.status_code),
        access_token=None,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        refresh_token=sandbox.refresh_token,
    )
    try:
        await connector.read("contacts", ["1000000001"])
        now[0] += timedelta(seconds=sandbox.knobs.token_ttl_s - 120)  # still valid, inside the refresh margin
        await connector.read("contacts", ["1000000002"])
    finally:
        await connector.aclose()
    assert sandbox.stats.calls["POST /oauth/v1/token"] == 2
    assert 401 not in statuses


async def test_expired_token_answers_401_expired_authentication(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=8)
    async with hubspot.client(sandbox) as http:
        form = {"grant_type": "refresh_token", "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret, "refresh_token": sandbox.refresh_token}  # fmt: skip
        token = (await http.post("/oauth/v1/token", data=form)).json()
        sandbox.expire_tokens()
        answer = await http.get(
            "/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
    assert token["expires_in"] == 1800
    assert answer.status_code == 401
    assert answer.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert answer.json()["correlationId"]


async def test_search_has_its_own_lower_rate(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=9, people=2)
    async with hubspot.client(sandbox) as http:
        searches = [await http.post("/crm/v3/objects/contacts/search", json=search_body()) for _ in range(6)]
        listing = await http.get("/crm/v3/objects/contacts")
    assert [s.status_code for s in searches] == [200] * 5 + [429]
    assert searches[-1].json()["policyName"] == "SECONDLY"
    assert "X-HubSpot-RateLimit-Remaining" not in searches[0].headers  # search answers carry no usage headers
    assert listing.status_code == 200
    assert listing.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert sandbox.stats.violations == 1


async def test_ten_secondly_limit_answers_429_with_usage_headers(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=10, people=1)
    sandbox.knobs.requests_per_window = 3
    async with hubspot.client(sandbox) as http:
        answers = [await http.get("/crm/v3/objects/contacts") for _ in range(4)]
    refused = answers[-1]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert refused.json()["errorType"] == "RATE_LIMIT"
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(refused.headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 625_000 - 3


async def test_search_takes_one_sort_only(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=11, people=2)
    async with hubspot.client(sandbox) as http:
        answer = await http.post(
            "/crm/v3/objects/contacts/search", json=search_body(sorts=["lastmodifieddate", "hs_object_id"])
        )
    assert answer.status_code == 400


async def test_batch_limit_is_100_inputs(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=12)
    inputs = [{"id": f"p{i}@example.org", "idProperty": "email", "properties": {}} for i in range(101)]
    async with hubspot.client(sandbox) as http:
        refused = await http.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})
    connector = hubspot.connect(sandbox)
    try:
        results = await connector.write("contacts", [upsert(i) for i in range(250)])
    finally:
        await connector.aclose()
    assert refused.status_code == 400
    assert all(r.ok for r in results)
    assert sandbox.stats.calls["POST /crm/v3/objects/{object_type}/batch/{action}"] == 1 + 3


async def test_duplicate_ids_in_one_batch_are_split_across_batches(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=13)
    connector = hubspot.connect(sandbox)
    batch = [upsert(1, firstname="A"), upsert(2), upsert(1, email="PERSON.1@example.org", firstname="B")]
    try:
        results = await connector.write("contacts", batch)
    finally:
        await connector.aclose()
    assert [r.ok for r in results] == [True, True, True]
    assert results[0].native_id == results[2].native_id
    assert sandbox.table("contacts").find("email", "person.1@example.org").fields["firstname"] == "B"


async def test_won_stage_is_closed_with_probability_one(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=14)
    connector = hubspot.connect(sandbox)
    try:
        schema = await connector.describe("deals")
    finally:
        await connector.aclose()
    stages = {s.value: s for s in schema.stages}
    assert schema.won_stages() == {"closedwon"}
    assert stages["closedlost"].is_closed
    assert not stages["closedlost"].is_won
    assert stages["contractsent"].probability == 0.9
    assert schema.fields["dealstage"].picklist == tuple(stages)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param({"lifecyclestage": "mql"}, "INVALID_OPTION", id="enumeration-outside-options"),
        pytest.param({"closeloop_revenue": "lots"}, "INVALID_NUMBER", id="number-not-a-number"),
        pytest.param({"no_such_property": "x"}, "PROPERTY_DOESNT_EXIST", id="unknown-property"),
        pytest.param({"createdate": "2026-01-01"}, "READ_ONLY_VALUE", id="read-only-property"),
    ],
)
async def test_invalid_property_values_fail_per_record(
    hubspot: SimpleNamespace, raw: dict[str, Any], code: str
) -> None:
    sandbox = create_sandbox(seed=15)
    connector = hubspot.connect(sandbox)
    try:
        await connector.create_fields("contacts", [OwnedField("closeloop_revenue", FieldType.DECIMAL, "Revenue")])
        results = await connector.write("contacts", [upsert(1), upsert(2, **raw)])
    finally:
        await connector.aclose()
    assert results[0].ok
    assert results[1].error is not None
    assert results[1].error.code == code
    assert not results[1].error.retryable


def test_sandbox_is_an_asgi_app_with_hubspot_defaults() -> None:
    sandbox = HubSpotSandbox(seed=0)
    assert (sandbox.knobs.requests_per_window, sandbox.knobs.window_s) == (190, 10.0)
    assert sandbox.knobs.bucket_limits["search"] == (5, 1.0)
    assert isinstance(httpx.ASGITransport(app=sandbox), httpx.ASGITransport)
