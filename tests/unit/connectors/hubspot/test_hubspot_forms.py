"""Form submissions: the sandbox records them as HubSpot does, and each becomes a touch with its page's values."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import respx
from closeloop_connectors.hubspot import HubSpotSettings, create
from closeloop_connectors.hubspot.forms import submission_touch
from closeloop_connectors.hubspot.sandbox import create_sandbox
from closeloop_connectors.hubspot.sandbox.forms import PORTAL_ID
from closeloop_connectors.hubspot.schema import contact_touchpoints

from closeloop.connector import ConnectorContext

FEB_10 = datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
DEMO_PAGE = "https://www.example.com/demo?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q1-demo"
PROPS = {
    "hs_analytics_source": "PAID_SEARCH",
    "hs_analytics_first_timestamp": "2026-01-05T00:00:00Z",
    "hs_latest_source": "EMAIL_MARKETING",
    "hs_latest_source_timestamp": "2026-02-20T00:00:00Z",
    "first_conversion_event_name": "Demo request",
    "first_conversion_date": "2026-02-10T09:30:00Z",
    "recent_conversion_event_name": "Pricing",
    "recent_conversion_date": "2026-02-20T00:00:00Z",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "brand",
}


def _submission(stamp: datetime, page: str, title: str) -> dict[str, Any]:
    return {"timestamp": int(stamp.timestamp() * 1000), "page-url": page, "title": title, "form-id": "f1"}


def test_a_submission_is_a_form_fill_at_its_time_with_its_pages_utm_values() -> None:
    touch = submission_touch("1", _submission(FEB_10, DEMO_PAGE, "Demo request"))
    assert touch is not None
    assert (touch.occurred_at, touch.kind, touch.campaign, touch.detail) == (
        FEB_10,
        "form_fill",
        "q1-demo",
        "Demo request",
    )
    assert touch.utm == {"utm_source": "linkedin", "utm_medium": "paid_social", "utm_campaign": "q1-demo"}
    assert touch.channel is None  # the UTM values tell it: paid social


def test_only_the_original_source_carries_the_contacts_utm_values() -> None:
    touches = contact_touchpoints("1", PROPS, None, [_submission(FEB_10, DEMO_PAGE, "Demo request")])
    found = {t.kind: (t.campaign, dict(t.utm), t.channel) for t in touches}
    assert found == {
        "original_source": (
            "brand",
            {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"},
            "paid_search",
        ),
        "visit": (None, {}, "email"),
        "form_fill": (
            "q1-demo",
            {"utm_source": "linkedin", "utm_medium": "paid_social", "utm_campaign": "q1-demo"},
            None,
        ),
    }


def test_without_submissions_the_conversions_stand_in_with_no_utm_values() -> None:
    fills = [t for t in contact_touchpoints("1", PROPS, None, None) if t.kind == "form_fill"]
    assert [(t.occurred_at.day, t.detail, t.campaign, dict(t.utm)) for t in fills] == [
        (10, "Demo request", None, {}),
        (20, "Pricing", None, {}),
    ]


async def test_sandbox_records_submissions_and_lists_them_per_contact(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=1)
    async with hubspot.client(sandbox) as http:
        form = (await http.post("/marketing/v3/forms/", json={"name": "Demo request"})).json()
        path = f"/submissions/v3/integration/submit/{PORTAL_ID}/{form['id']}"
        for day, page in ((10, DEMO_PAGE), (20, "https://www.example.com/pricing")):
            body = {
                "submittedAt": str(int(datetime(2026, 2, day, tzinfo=UTC).timestamp() * 1000)),
                "fields": [{"objectTypeId": "0-1", "name": "email", "value": "Ann@Example.com"},
                           {"objectTypeId": "0-1", "name": "firstname", "value": "Ann"}],
                "context": {"pageUri": page, "pageName": "Page"},
            }  # fmt: skip
            answer = await http.post(path, json=body, headers={"Authorization": ""})  # the public endpoint
            assert answer.status_code == 200, answer.text
        unknown = await http.post(f"/submissions/v3/integration/submit/{PORTAL_ID}/nope", json=body)
        (contact,) = sandbox.table("contacts").live()
        listed = (
            await http.get(
                "/contacts/v1/contact/vids/batch/",
                params={"vid": [contact.id, "999"], "formSubmissionMode": "all", "property": "email"},
            )
        ).json()
        newest = (await http.get("/contacts/v1/contact/vids/batch/", params={"vid": contact.id})).json()
    assert unknown.status_code == 404
    assert contact.fields["email"] == "ann@example.com"
    assert (contact.fields["num_conversion_events"], contact.fields["first_conversion_date"]) == (
        "2",
        "2026-02-10T00:00:00.000Z",
    )
    assert list(listed) == [contact.id]
    assert listed[contact.id]["properties"] == {"email": {"value": "ann@example.com"}}
    pages = [s["page-url"] for s in listed[contact.id]["form-submissions"]]
    assert pages == ["https://www.example.com/pricing", DEMO_PAGE]  # newest first
    assert [s["page-url"] for s in newest[contact.id]["form-submissions"]] == ["https://www.example.com/pricing"]


@pytest.mark.parametrize("mode", ["all", "none"])
async def test_sandbox_v1_batch_refuses_more_than_100_vids_and_keeps_modes(hubspot: SimpleNamespace, mode: str) -> None:
    sandbox = create_sandbox(seed=1, people=1)
    (contact,) = sandbox.table("contacts").live()
    async with hubspot.client(sandbox) as http:
        many = await http.get("/contacts/v1/contact/vids/batch/", params={"vid": [str(i) for i in range(101)]})
        one = (
            await http.get("/contacts/v1/contact/vids/batch/", params={"vid": contact.id, "formSubmissionMode": mode})
        ).json()
    assert many.status_code == 400
    # a seeded contact's first conversion is a submission on a landing page tagged with its UTM values
    assert len(one[contact.id]["form-submissions"]) == (1 if mode == "all" else 0)


async def test_connector_reads_the_submissions_of_contacts_that_converted(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=4, people=3)
    connector = hubspot.connect(sandbox)
    try:
        ids = [r.id for r in sandbox.table("contacts").live()]
        touches = await connector.touchpoints("contacts", ids, None)
    finally:
        await connector.aclose()
    fills = [t for t in touches if t.kind == "form_fill"]
    assert sorted(t.native_id for t in fills) == sorted(ids)
    people = {r.id: r.fields for r in sandbox.table("contacts").live()}
    assert all(t.campaign == people[t.native_id].get("utm_campaign") for t in fills)
    assert sandbox.stats.calls["GET /contacts/v1/contact/vids/batch/"] == 1


@respx.mock(base_url="https://api.hubapi.com", assert_all_called=True)
async def test_a_portal_that_refuses_the_submissions_read_leaves_the_conversions_without_utm_values(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    stamp = "2026-02-10T09:30:00.000Z"
    props = PROPS | {"hs_object_id": "7", "num_conversion_events": "2"}
    respx_mock.post("/crm/v3/objects/contacts/batch/read").respond(
        json={"status": "COMPLETE", "results": [{"id": "7", "properties": props, "createdAt": stamp,
                                                 "updatedAt": stamp, "archived": False}]}
    )  # fmt: skip
    refused = {
        "status": "error",
        "message": "This app hasn't been granted all required scopes",
        "category": "MISSING_SCOPES",
    }
    respx_mock.get("/contacts/v1/contact/vids/batch/").respond(403, json=refused)
    settings = HubSpotSettings(access_token="pat-na1-unit-test", backoff_base_seconds=0.01, backoff_max_seconds=0.02)
    connector = create(ConnectorContext("hubspot-unit", settings))
    try:
        touches = await connector.touchpoints("contacts", ["7"], None)
    finally:
        await connector.aclose()
    fills = [(t.detail, t.campaign, dict(t.utm)) for t in touches if t.kind == "form_fill"]
    assert fills == [("Demo request", None, {}), ("Pricing", None, {})]
    assert "form submissions not readable (HTTP 403)" in caplog.text
