"""Zoho campaign memberships as touches: parsing campaigns, which to read, and the time each touch proposes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from closeloop_connectors.zoho.campaigns import (
    Campaign,
    backfill_time,
    campaigns_to_read,
    first_read,
    member_touch,
    reread_due,
    to_campaign,
)

from closeloop.model import Cursor

DAY = timedelta(hours=24)
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


MAR_1, MAR_2 = at(1), at(2)


def campaign(*, created: datetime = MAR_1, modified: datetime = MAR_1, start: datetime | None = MAR_2) -> Campaign:
    return Campaign("701", "Spring Webinar", "Webinar", start, created, modified)


def test_a_campaign_reads_its_times_in_the_org_zone_and_its_start_date_as_midnight_utc() -> None:
    row = {
        "id": "4876876000000002189",
        "Campaign_Name": "Spring Webinar",
        "Type": "Webinar",
        "Start_Date": "2026-03-02",
        "Created_Time": "2026-03-01T10:00:00+05:30",
        "Modified_Time": "2026-03-04T17:30:00+05:30",
    }
    found = to_campaign(row)
    assert (found.name, found.type, found.start) == ("Spring Webinar", "Webinar", at(2))
    assert (found.created_at, found.modified_at) == (datetime(2026, 3, 1, 4, 30, tzinfo=UTC), at(4, 12))


def test_a_campaign_without_a_start_date_or_type_keeps_none() -> None:
    found = to_campaign({"id": "1", "Campaign_Name": "X", "Created_Time": "2026-03-01T00:00:00+00:00",
                         "Modified_Time": "2026-03-01T00:00:00+00:00", "Start_Date": None, "Type": None})  # fmt: skip
    assert (found.start, found.type) == (None, None)


@pytest.mark.parametrize(
    ("since", "now", "due"),
    [
        (None, NOW, True),
        (Cursor(at(10, 1), ""), NOW, False),  # same day: only modified campaigns
        (Cursor(at(9, 23), ""), NOW, True),  # midnight passed since the last read
        (Cursor(at(3, 12), ""), NOW, True),  # days without a read
    ],
    ids=["first-read", "same-interval", "interval-start-passed", "long-gap"],
)
def test_every_campaign_is_reread_on_the_first_read_and_once_an_interval_starts(
    since: Cursor | None, now: datetime, due: bool
) -> None:
    assert reread_due(since, now, DAY) is due


def test_a_six_hour_interval_rereads_at_six_in_the_morning() -> None:
    assert reread_due(Cursor(at(10, 5), ""), at(10, 6), timedelta(hours=6))
    assert not reread_due(Cursor(at(10, 6), ""), at(10, 11), timedelta(hours=6))


def test_between_rereads_only_the_campaigns_modified_since_the_last_read_are_read() -> None:
    old, edited = campaign(modified=at(5)), campaign(modified=at(10, 2))
    since = Cursor(at(10, 1), "")
    assert campaigns_to_read([old, edited], since, NOW, DAY) == [edited]
    assert campaigns_to_read([old, edited], Cursor(at(9, 23), ""), NOW, DAY) == [old, edited]


def test_a_campaign_created_since_the_last_read_is_read_for_the_first_time() -> None:
    assert first_read(campaign(created=at(1)), None)
    assert first_read(campaign(created=at(10, 2)), Cursor(at(10, 1), ""))
    assert not first_read(campaign(created=at(1)), Cursor(at(10, 1), ""))


@pytest.mark.parametrize(
    ("start", "person_created", "expected"),
    [
        (at(2), at(1), at(2)),  # the person existed before the campaign started
        (at(2), at(5), at(5)),  # the person was created after the start
        (None, at(1, 0), at(1)),  # no start date: the campaign's creation (03-01 00:00) stands in
        (at(2), None, at(2)),  # a person without a creation time
        (datetime(2026, 4, 1, tzinfo=UTC), at(1), NOW),  # a campaign starting later: never after the read
    ],
    ids=["start", "person-created", "no-start-date", "no-person-time", "future-start"],
)
def test_a_backfilled_membership_is_dated_by_the_later_of_the_start_and_the_person_creation(
    start: datetime | None, person_created: datetime | None, expected: datetime
) -> None:
    assert backfill_time(campaign(start=start), person_created, NOW) == expected


def test_a_member_becomes_a_campaign_touch_with_its_channel_status_and_key() -> None:
    member = {"id": "48768760001", "Created_Time": "2026-03-05T00:00:00+00:00", "Member_Status": "Responded"}
    touch = member_touch(campaign(), member, backfill=True, now=NOW)
    assert (touch.native_id, touch.kind, touch.channel, touch.campaign, touch.detail) == (
        "48768760001",
        "campaign",
        "events",
        "Spring Webinar",
        "Responded",
    )
    assert (touch.occurred_at, touch.seen_key) == (at(5), "701:48768760001")


def test_a_member_seen_on_a_later_read_proposes_the_read_time() -> None:
    member = {"id": "9", "Created_Time": "2026-03-05T00:00:00+00:00", "Member_Status": None}
    touch = member_touch(campaign(), member, backfill=False, now=NOW)
    assert (touch.occurred_at, touch.detail) == (NOW, None)


def test_a_campaign_type_closeloop_does_not_know_reports_as_other() -> None:
    odd = Campaign("1", "Cold calls", "Telemarketing", None, at(1), at(1))
    assert member_touch(odd, {"id": "9"}, backfill=True, now=NOW).channel == "other"
