"""Property histories: the sandbox serves ``propertiesWithHistory`` as HubSpot does; the connector reads the times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from closeloop_connectors.hubspot.sandbox import HubSpotSandbox, create_sandbox

from .test_hubspot_sandbox_spec import SPECS, validate

CONTACTS = "/crm/v3/objects/contacts"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    box = create_sandbox(seed=3, people=3, deals=0)
    box.knobs.enforce_limits = False
    return box


def edit(box: HubSpotSandbox, contact_id: str, at: datetime, **properties: str) -> None:
    box.clock.frozen = at
    box.table("contacts").update(contact_id, properties, at=at)


async def test_batch_read_lists_each_value_newest_first_with_its_time(
    hubspot: SimpleNamespace, sandbox: HubSpotSandbox
) -> None:
    contact = next(iter(sandbox.table("contacts").live()))
    first = contact.fields.get("firstname")
    edit(sandbox, contact.id, START, firstname="Ann")
    edit(sandbox, contact.id, START + timedelta(seconds=5), firstname="Bea")
    edit(sandbox, contact.id, START + timedelta(seconds=9), lastname="Later")
    body = {"inputs": [{"id": contact.id}], "properties": ["email"], "propertiesWithHistory": ["firstname"]}
    async with hubspot.client(sandbox) as http:
        answer = await http.post(f"{CONTACTS}/batch/read", json=body)
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    history = result["propertiesWithHistory"]["firstname"]
    assert [(h["value"], h["timestamp"]) for h in history[:2]] == [
        ("Bea", "2026-03-02T09:00:05.000Z"),
        ("Ann", "2026-03-02T09:00:00.000Z"),
    ]
    assert [h["value"] for h in history[2:]] == ([first] if first else [])
    if SPECS.is_dir():
        validate(answer.json(), "contacts-v3.json", f"{CONTACTS}/batch/read", "post")


async def test_a_get_with_properties_with_history_carries_them(
    hubspot: SimpleNamespace, sandbox: HubSpotSandbox
) -> None:
    contact = next(iter(sandbox.table("contacts").live()))
    edit(sandbox, contact.id, START, firstname="Ann")
    async with hubspot.client(sandbox) as http:
        answer = await http.get(f"{CONTACTS}/{contact.id}", params={"propertiesWithHistory": "firstname"})
    assert answer.json()["propertiesWithHistory"]["firstname"][0]["value"] == "Ann"


async def test_more_than_50_records_with_histories_are_refused(
    hubspot: SimpleNamespace, sandbox: HubSpotSandbox
) -> None:
    body = {"inputs": [{"id": str(1000000001 + i)} for i in range(51)], "propertiesWithHistory": ["firstname"]}
    async with hubspot.client(sandbox) as http:
        answer = await http.post(f"{CONTACTS}/batch/read", json=body)
    assert answer.status_code == 400
    assert "limit is 50" in answer.json()["message"]


async def test_field_times_are_the_newest_change_of_each_field_50_records_a_call(
    hubspot: SimpleNamespace, sandbox: HubSpotSandbox
) -> None:
    table = sandbox.table("contacts")
    ids = [table.insert({"email": f"p{i}@example.org", "firstname": "x"}, at=START).id for i in range(60)]
    edit(sandbox, ids[59], START + timedelta(seconds=7), firstname="y")
    sandbox.stats.reset()
    connector = hubspot.connect(sandbox)
    try:
        times = await connector.field_times("contacts", ids, ["firstname", "lastname"])
    finally:
        await connector.aclose()
    assert sandbox.stats.calls["POST /crm/v3/objects/{object_type}/batch/{action}"] == 2
    assert times[ids[0]] == {"firstname": START}  # set at creation, never changed
    assert times[ids[59]] == {"firstname": START + timedelta(seconds=7)}
