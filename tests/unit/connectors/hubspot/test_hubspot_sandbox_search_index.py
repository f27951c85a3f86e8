"""The HubSpot sandbox's search read from its (modified, id) index answers exactly what a scan of every row does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from closeloop_connectors.hubspot.sandbox import HubSpotSandbox
from closeloop_connectors.hubspot.testing import client

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INSTANTS = [START + timedelta(minutes=m, milliseconds=ms) for m in range(12) for ms in (0, 0, 250)]
SEARCH = "/crm/v3/objects/contacts/search"
LIFECYCLE = ("lead", "subscriber", "customer")


def millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    """700 contacts on few instants (many share one), some archived, one merged away, one mass-restamped block."""
    box = HubSpotSandbox(seed=5, clock=lambda: START + timedelta(hours=1))
    box.knobs.enforce_limits = False
    table = box.table("contacts")
    rng = random.Random(5)
    ids = []
    for number in range(700):
        fields = {"email": f"person{number}@example.com", "lifecyclestage": LIFECYCLE[number % 3]}
        if number % 5:
            fields["firstname"] = f"First{number % 17}"
        ids.append(table.insert(fields, at=rng.choice(INSTANTS)).id)
    for row_id in rng.sample(ids, 40):
        table.delete(row_id, at=rng.choice(INSTANTS))
    live = [i for i in ids if table.get(i) is not None]
    table.merge(live[3], live[4], at=INSTANTS[7])
    table.restamp(live[100:400], INSTANTS[20])  # a mass update: 300 records, one instant
    return box


async def both(sandbox: HubSpotSandbox, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(status, body) of the search as served, and as served by the scan of every row."""
    async with client(sandbox) as http:
        served = await http.post(SEARCH, json=body)
        with monkeypatch.context() as patch:
            patch.setattr(sandbox, "_index_span", lambda *args: None)
            scanned = await http.post(SEARCH, json=body)
    return answer(served), answer(scanned)


def answer(response: Any) -> tuple[int, Any]:
    body = response.json()
    body.pop("correlationId", None)  # an error's id for support, new each time
    return response.status_code, body


def body_of(filters: list[dict[str, Any]], sort: str, *, limit: int = 200, after: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters}] if filters else [],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": ["email", "lastmodifieddate", "lifecyclestage"],
        "limit": limit,
    }
    if after:
        body["after"] = str(after)
    return body


def modified(op: str, moment: datetime, high: datetime | None = None) -> dict[str, Any]:
    found = {"propertyName": "lastmodifieddate", "operator": op, "value": millis(moment)}
    return found | ({"highValue": millis(high)} if high else {})


def record_id(op: str, value: str, high: str | None = None) -> dict[str, Any]:
    found = {"propertyName": "hs_object_id", "operator": op, "value": value}
    return found | ({"highValue": high} if high else {})


def held(ids: list[str]) -> dict[str, Any]:
    """The change stream's filter leaving out the records of an instant it already holds."""
    return {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": ids}


MASS = INSTANTS[20]
CASES = [
    body_of([], "lastmodifieddate"),
    body_of([], "lastmodifieddate", after=600, limit=100),
    body_of([modified("GT", INSTANTS[9])], "lastmodifieddate"),
    body_of([modified("GTE", INSTANTS[9])], "lastmodifieddate", after=200),
    body_of([modified("GTE", INSTANTS[2])], "lastmodifieddate", limit=7, after=21),
    body_of([modified("LT", INSTANTS[15])], "lastmodifieddate"),
    body_of([modified("LTE", INSTANTS[15])], "lastmodifieddate", limit=3),
    body_of([modified("EQ", INSTANTS[5])], "lastmodifieddate"),
    body_of([modified("EQ", INSTANTS[5] + timedelta(milliseconds=1))], "lastmodifieddate"),
    body_of([modified("BETWEEN", INSTANTS[4], INSTANTS[26])], "lastmodifieddate", after=50),
    body_of([modified("BETWEEN", INSTANTS[26], INSTANTS[4])], "lastmodifieddate"),
    body_of([modified("GTE", INSTANTS[3]), modified("LT", INSTANTS[30])], "lastmodifieddate"),
    body_of([modified("GTE", INSTANTS[30]), modified("LT", INSTANTS[3])], "lastmodifieddate"),
    body_of([modified("GT", START + timedelta(days=1))], "lastmodifieddate"),
    body_of([modified("EQ", MASS)], "hs_object_id"),
    body_of([modified("EQ", MASS)], "hs_object_id", after=200),
    body_of([modified("EQ", MASS), record_id("GT", "1000000250")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("GTE", "1000000250")], "hs_object_id", limit=10),
    body_of([modified("EQ", MASS), record_id("LT", "1000000300")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("LTE", "1000000300")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("EQ", "1000000301")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("BETWEEN", "1000000150", "1000000170")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("GT", "1000000250.5")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("GT", "5")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("LT", "99999999999")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("GT", "99999999999")], "hs_object_id"),
    body_of([modified("EQ", MASS), record_id("GT", "1000000250")], "lastmodifieddate"),
    body_of([modified("GTE", MASS), record_id("LT", "1000000700")], "hs_object_id"),
    body_of([modified("BETWEEN", MASS, MASS), record_id("GT", "1000000100")], "hs_object_id"),
    body_of([modified("GTE", INSTANTS[9]), record_id("GT", "1000000350")], "lastmodifieddate"),
    body_of([modified("GTE", INSTANTS[9])], "hs_object_id"),
    body_of(
        [modified("GTE", INSTANTS[9]), {"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}],
        "lastmodifieddate",
        after=30,
        limit=25,
    ),
    body_of([modified("EQ", MASS), {"propertyName": "firstname", "operator": "HAS_PROPERTY"}], "hs_object_id"),
    body_of([{"propertyName": "lastmodifieddate", "operator": "GT", "value": ""}], "lastmodifieddate"),
    body_of([{"propertyName": "lastmodifieddate", "operator": "NEQ", "value": millis(MASS)}], "lastmodifieddate"),
    body_of([{"propertyName": "lastmodifieddate", "operator": "HAS_PROPERTY"}], "lastmodifieddate", after=650),
    body_of([{"propertyName": "lastmodifieddate", "operator": "IN", "values": [millis(MASS)]}], "lastmodifieddate"),
    body_of(
        [modified("EQ", MASS), {"propertyName": "hs_object_id", "operator": "IN", "values": ["1000000150"]}],
        "hs_object_id",
    ),
    body_of([modified("EQ", MASS), record_id("GT", "NaN-ish")], "hs_object_id"),
    body_of([modified("GTE", MASS), held(["1000000150", "1000000151", "1000000399"])], "lastmodifieddate"),
    body_of([modified("GTE", MASS), held(["1000000005", "99999999999", "1000000150"])], "lastmodifieddate", after=100),
    body_of([modified("GTE", INSTANTS[2]), held(["1000000003"]), held(["1000000004"])], "lastmodifieddate", limit=9),
    body_of([held(["1000000010", "1000000020"])], "lastmodifieddate", after=600),
]


@pytest.mark.parametrize("body", CASES, ids=range(len(CASES)))
async def test_an_indexed_search_answers_like_a_scan(
    sandbox: HubSpotSandbox, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, scanned = await both(sandbox, body, monkeypatch)
    assert served == scanned


async def test_the_change_stream_queries_are_served_from_the_index(
    sandbox: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans: list[object] = []
    original = sandbox._matching
    monkeypatch.setattr(sandbox, "_matching", lambda *args: scans.append(args) or original(*args))
    async with client(sandbox) as http:
        for body in (
            body_of([], "lastmodifieddate"),
            body_of([modified("GTE", INSTANTS[9])], "lastmodifieddate"),
            body_of([modified("GT", INSTANTS[9])], "lastmodifieddate"),
            body_of([modified("EQ", MASS), record_id("GT", "1000000250")], "hs_object_id"),
            body_of([modified("GTE", MASS), held(["1000000150", "1000000151"])], "lastmodifieddate"),
        ):
            answer = await http.post(SEARCH, json=body)
            assert answer.status_code == 200
            assert answer.json()["total"] > 0
    assert scans == []


async def test_random_change_stream_queries_answer_like_a_scan(
    sandbox: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    ids = sorted(row.id for row in sandbox.table("contacts").rows.values())
    for _ in range(150):
        filters: list[dict[str, Any]] = []
        for _ in range(rng.randint(0, 2)):
            op = rng.choice(("GT", "GTE", "LT", "LTE", "EQ", "BETWEEN"))
            first, second = sorted(rng.sample(INSTANTS, 2))
            filters.append(modified(op, first, second if op == "BETWEEN" else None))
        if rng.random() < 0.4:
            op = rng.choice(("GT", "GTE", "LT", "LTE", "EQ", "BETWEEN"))
            low, high = sorted(rng.sample(ids, 2))
            filters.append(record_id(op, low, high if op == "BETWEEN" else None))
        if rng.random() < 0.3:
            filters.append(held(rng.sample(ids, rng.randint(1, 30))))
        if rng.random() < 0.2:
            filters.append({"propertyName": "lifecyclestage", "operator": "EQ", "value": rng.choice(LIFECYCLE)})
        sort = rng.choice(("lastmodifieddate", "lastmodifieddate", "hs_object_id"))
        body = body_of(filters, sort, limit=rng.choice((1, 10, 200)), after=rng.choice((0, 0, 5, 150, 400)))
        served, scanned = await both(sandbox, body, monkeypatch)
        assert served == scanned, body


async def test_paging_stops_at_ten_thousand_results_with_the_index() -> None:
    box = HubSpotSandbox(seed=6, clock=lambda: START)
    box.knobs.enforce_limits = False
    table = box.table("contacts")
    for number in range(10_050):
        table.insert({"email": f"p{number}@example.com"}, at=INSTANTS[number % 6])
    async with client(box) as http:
        last = await http.post(SEARCH, json=body_of([], "lastmodifieddate", after=9_990, limit=20))
        past = await http.post(SEARCH, json=body_of([], "lastmodifieddate", after=10_000, limit=20))
    assert last.status_code == 200
    assert last.json()["total"] == 10_050
    assert len(last.json()["results"]) == 10
    assert last.json()["paging"] == {"next": {"after": "10010"}}
    assert past.status_code == 400
