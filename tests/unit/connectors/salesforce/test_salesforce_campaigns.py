"""Campaign members as touches: who responded, when, to which campaign, through which channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from closeloop_connectors.salesforce.campaigns import member_touch
from closeloop_connectors.salesforce.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_sandbox

CAMPAIGNS = {"701A": {"Name": "Spring webinar", "Type": "Webinar"}, "701B": {"Name": "Mystery", "Type": "Other"}}
RESPONDED = {
    "Id": "00vA",
    "CampaignId": "701A",
    "ContactId": "003A",
    "LeadId": None,
    "Status": "Responded",
    "HasResponded": True,
    "FirstRespondedDate": "2026-02-03",
    "CreatedDate": "2026-01-12T09:00:00.000+0000",
    "IsDeleted": False,
}


def test_a_response_is_a_touch_on_its_first_responded_day_with_its_campaign_and_channel() -> None:
    touch = member_touch(RESPONDED, CAMPAIGNS)
    assert touch is not None
    assert (touch.native_id, touch.occurred_at, touch.kind) == ("003A", datetime(2026, 2, 3, tzinfo=UTC), "campaign")
    assert (touch.channel, touch.campaign, touch.detail) == ("events", "Spring webinar", "Responded")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"Status": "Sent", "HasResponded": False, "FirstRespondedDate": None}, None, id="never-responded"),
        pytest.param({"IsDeleted": True}, None, id="removed"),
        pytest.param({"ContactId": None, "LeadId": None}, None, id="nobody"),
        pytest.param({"ContactId": None, "LeadId": "00QA"}, ("00QA", "events"), id="a-lead"),
        pytest.param({"CampaignId": "701B"}, ("003A", "other"), id="a-type-without-channel"),
    ],
)
def test_member_touch_cases(change: dict[str, Any], expected: tuple[str, str] | None) -> None:
    touch = member_touch(RESPONDED | change, CAMPAIGNS)
    assert (None if touch is None else (touch.native_id, touch.channel)) == expected


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    sandbox = create_sandbox(seed=2, people=1, deals=0)
    sandbox.clock.frozen = datetime(2026, 1, 12, 9, tzinfo=UTC)
    sandbox.knobs.token_ttl_s = 10**9  # the test moves the clock by weeks
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as raw:
        form = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID}
        form["client_secret"] = DEFAULT_CLIENT_SECRET
        token = (await raw.post("/services/oauth2/token", data=form)).json()["access_token"]
        raw.headers["Authorization"] = f"Bearer {token}"
        raw.sandbox = sandbox  # type: ignore[attr-defined]
        yield raw


async def test_sandbox_member_responds_once_and_keeps_its_first_responded_date(client: httpx.AsyncClient) -> None:
    api = "/services/data/v61.0/sobjects"
    sandbox = client.sandbox  # type: ignore[attr-defined]
    contact = next(iter(sandbox.table("Contact").live())).id
    campaign = (await client.post(f"{api}/Campaign", json={"Name": "Spring webinar", "Type": "Webinar"})).json()["id"]
    made = await client.post(f"{api}/CampaignMember", json={"CampaignId": campaign, "ContactId": contact})
    assert made.status_code == 201, made.text
    member = made.json()["id"]

    async def state() -> tuple[object, object, object]:
        body = (await client.get(f"{api}/CampaignMember/{member}")).json()
        return body["Status"], body["HasResponded"], body["FirstRespondedDate"]

    assert await state() == ("Sent", False, None)
    for day, status in ((3, "Responded"), (9, "Sent"), (10, "Responded")):
        sandbox.clock.frozen = datetime(2026, 2, day, tzinfo=UTC)
        assert (await client.patch(f"{api}/CampaignMember/{member}", json={"Status": status})).status_code == 204
    assert await state() == ("Responded", True, "2026-02-03")
