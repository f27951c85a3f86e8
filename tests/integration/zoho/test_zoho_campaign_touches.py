"""The Zoho connector's campaign touch stream against its sandbox: what it reads, in how many calls, and the times
it proposes. Campaigns, people and memberships are made through the sandbox's REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from closeloop_connectors.zoho.adapter import ZohoConnector
from closeloop_connectors.zoho.sandbox import ZohoSandbox, create_sandbox
from closeloop_connectors.zoho.settings import ZohoSettings

from closeloop.connector import ConnectorContext
from closeloop.model import Cursor, TouchPage, WriteOp, WriteRequest

LIST, RELATED = "GET /crm/v8/{module}", "GET /crm/v8/{module}/{record_id}/{related}"


def day(dom: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, dom, hour, tzinfo=UTC)


class Org:
    """A Zoho sandbox and a connector sharing its clock."""

    def __init__(self, **settings: Any) -> None:
        self.box: ZohoSandbox = create_sandbox(seed=5)
        self.box.knobs.enforce_limits = False
        config = ZohoSettings(
            client_id=self.box.client_id,
            client_secret=self.box.client_secret,
            refresh_token=self.box.refresh_token,
            base_url=self.box.base_url,
            auth_url=self.box.base_url,
            **settings,
        )
        transport = httpx.ASGITransport(app=self.box)
        context = ConnectorContext("zoho", config, transport=transport, clock=lambda: self.box.clock.now())
        self.api = ZohoConnector(context)

    def at(self, moment: datetime) -> None:
        self.box.clock.frozen = moment

    async def create(self, module: str, fields: dict[str, Any]) -> str:
        (result,) = await self.api.write(module, [WriteRequest("new", WriteOp.CREATE, fields)])
        assert result.ok, result.error
        assert result.native_id is not None
        return result.native_id

    async def relate(self, path: str, other: str, status: str) -> None:
        """A membership through the related-list API (either side, as Zoho allows)."""
        body = {"data": [{"id": other, "Member_Status": status}]}
        answer = await self.api.http.request("PUT", f"{self.box.base_url}/crm/v8/{path}", json=body)
        assert answer.status_code == 200, answer.text

    async def read(self, since: Cursor | None) -> list[TouchPage]:
        self.box.stats.reset()
        return [page async for page in self.api.touch_changes(since)]


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    made = Org()
    made.at(day(1))
    yield made
    await made.api.aclose()


async def _webinar(org: Org) -> tuple[str, str, str]:
    """A campaign (made 03-02, starting 03-03) with a contact made before it and a lead made after its start."""
    ann = await org.create("Contacts", {"Last_Name": "Ann", "Email": "ann@example.com"})
    org.at(day(2))
    webinar = await org.create("Campaigns", {"Campaign_Name": "Spring Webinar", "Type": "Webinar",
                                             "Start_Date": "2026-03-03"})  # fmt: skip
    org.at(day(4))
    lee = await org.create("Leads", {"Last_Name": "Lee", "Email": "lee@example.com"})
    await org.relate(f"Contacts/{ann}/Campaigns", webinar, "Responded")
    await org.relate(f"Campaigns/{webinar}/Leads", lee, "Invited")
    return webinar, ann, lee


async def test_the_first_read_backfills_each_member_at_the_later_of_the_start_and_its_creation(org: Org) -> None:
    webinar, ann, lee = await _webinar(org)
    org.at(day(10, 9))
    pages = await org.read(None)
    touches = {t.native_id: t for page in pages for t in page.touches}
    assert {p: (t.occurred_at, t.campaign, t.channel, t.detail) for p, t in touches.items()} == {
        ann: (day(3), "Spring Webinar", "events", "Responded"),  # the campaign's start: Ann existed before it
        lee: (day(4), "Spring Webinar", "events", "Invited"),  # Lee's creation, after the start
    }
    assert {t.seen_key for t in touches.values()} == {f"{webinar}:{ann}", f"{webinar}:{lee}"}
    assert pages[-1].last == Cursor(day(10, 9), "")  # the stream's position: this read's start
    # one call lists the campaigns, then one per campaign and person module
    assert (org.box.stats.calls[LIST], org.box.stats.calls[RELATED]) == (1, 2)


async def test_a_quiet_read_within_the_interval_lists_the_campaigns_and_reads_no_members(org: Org) -> None:
    await _webinar(org)
    org.at(day(10, 9))
    pages = await org.read(Cursor(day(10, 8), ""))
    assert [page.touches for page in pages] == [()]
    assert (org.box.stats.calls[LIST], org.box.stats.calls[RELATED]) == (1, 0)


async def test_a_member_added_to_an_unedited_campaign_is_found_when_the_next_interval_starts(org: Org) -> None:
    webinar, ann, lee = await _webinar(org)
    org.at(day(10, 12))
    bob = await org.create("Contacts", {"Last_Name": "Bob", "Email": "bob@example.com"})
    await org.relate(f"Campaigns/{webinar}/Contacts", bob, "Sent")
    same_day = await org.read(Cursor(day(10, 9), ""))
    assert [t for page in same_day for t in page.touches] == []
    org.at(day(11).replace(minute=5))
    next_day = await org.read(Cursor(day(10, 23), ""))
    touches = {t.native_id: t.occurred_at for page in next_day for t in page.touches}
    # not the campaign's first read: each member proposes this read's time; the engine keeps the first sightings
    # of Ann and Lee, and Bob's is this one
    assert touches == dict.fromkeys((ann, lee, bob), day(11).replace(minute=5))


async def test_an_edited_campaign_is_read_again_between_rereads(org: Org) -> None:
    webinar, _, _ = await _webinar(org)
    org.at(day(10, 10))
    (result,) = await org.api.write("Campaigns", [WriteRequest("e", WriteOp.UPDATE, {"Status": "Active"}, webinar)])
    assert result.ok
    org.at(day(10, 11))
    pages = await org.read(Cursor(day(10, 9), ""))
    assert len([t for page in pages for t in page.touches]) == 2
    assert org.box.stats.calls[RELATED] == 2


async def test_no_campaign_members_asked_for_means_no_calls() -> None:
    org = Org(campaign_members=[])
    try:
        assert await org.read(None) == []
        assert sum(org.box.stats.calls.values()) == 0
    finally:
        await org.api.aclose()


async def test_only_the_person_modules_asked_for_are_read() -> None:
    org = Org(campaign_members=["Contacts"])
    try:
        org.at(day(1))
        _, ann, _ = await _webinar(org)
        org.at(day(10))
        touches = [t.native_id for page in await org.read(None) for t in page.touches]
        assert (touches, org.box.stats.calls[RELATED]) == ([ann], 1)
    finally:
        await org.api.aclose()


async def test_a_campaign_of_more_than_200_members_is_read_a_page_at_a_time(org: Org) -> None:
    webinar = await org.create("Campaigns", {"Campaign_Name": "Big Webinar", "Type": "Webinar"})
    people = [await org.create("Contacts", {"Last_Name": f"P{i}", "Email": f"p{i}@example.com"}) for i in range(205)]
    for start in range(0, len(people), 100):  # the related-list write takes 100 a call
        body = {"data": [{"id": p, "Member_Status": "Sent"} for p in people[start : start + 100]]}
        answer = await org.api.http.request("PUT", f"{org.box.base_url}/crm/v8/Campaigns/{webinar}/Contacts", json=body)
        assert answer.status_code == 200, answer.text
    org.at(day(10))
    touches = [t.native_id for page in await org.read(None) for t in page.touches]
    assert sorted(touches) == sorted(people)
    assert org.box.stats.calls[RELATED] == 3  # Contacts: 200 + 5; Leads: none (204)
