"""Touchpoints: channels derived from UTM values and source types by table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.loop import (
    Channel,
    OriginalSource,
    TouchKind,
    channel_of_source,
    derive_channel,
    make_touch,
    touch_from_original_source,
    touch_from_touchpoint,
)
from closeloop.model import Touchpoint

AT = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "medium", "channel"),
    [
        ("google", "cpc", Channel.PAID_SEARCH),
        ("bing", "PPC", Channel.PAID_SEARCH),
        ("linkedin", "cpc", Channel.PAID_SOCIAL),
        ("facebook", "paid_social", Channel.PAID_SOCIAL),
        ("newsletter", "email", Channel.EMAIL),
        ("google", "organic", Channel.ORGANIC_SEARCH),
        ("duckduckgo", None, Channel.ORGANIC_SEARCH),
        ("partner.example", "referral", Channel.REFERRAL),
        (None, None, Channel.DIRECT),
        ("(direct)", "(none)", Channel.DIRECT),
        ("expo", "event", Channel.EVENTS),
        ("vendor", "webinar", Channel.EVENTS),
        ("twitter", "social", Channel.OTHER),
        ("print", "flyer", Channel.OTHER),
    ],
    ids=lambda v: str(v),
)
def test_channel_from_utm(source: str | None, medium: str | None, channel: Channel) -> None:
    assert derive_channel(source, medium) is channel


@pytest.mark.parametrize(
    ("source", "channel"),
    [
        (OriginalSource("ORGANIC_SEARCH"), Channel.ORGANIC_SEARCH),
        (OriginalSource("Paid Social"), Channel.PAID_SOCIAL),
        (OriginalSource("email-marketing"), Channel.EMAIL),
        (OriginalSource("made up", utm_source="google", utm_medium="cpc"), Channel.PAID_SEARCH),
        (OriginalSource(), Channel.OTHER),
    ],
    ids=["type", "label", "dashes", "utm-fallback", "blank"],
)
def test_channel_of_original_source(source: OriginalSource, channel: Channel) -> None:
    assert channel_of_source(source) is channel


def test_make_touch_takes_channel_and_campaign_from_utm() -> None:
    touch = make_touch(
        "c",
        AT,
        TouchKind.FORM_FILL,
        utm={"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"},
    )
    assert (touch.channel, touch.campaign) == (Channel.PAID_SEARCH, "spring")


def test_original_source_becomes_a_touch_only_with_a_time() -> None:
    assert touch_from_original_source("c", OriginalSource("referral")) is None
    touch = touch_from_original_source("c", OriginalSource("referral", utm_campaign="p1", first_touch_at=AT))
    assert touch is not None
    assert (touch.kind, touch.channel, touch.campaign, touch.at) == (
        TouchKind.ORIGINAL_SOURCE,
        Channel.REFERRAL,
        "p1",
        AT,
    )


def test_stored_touchpoint_becomes_a_touch() -> None:
    point = Touchpoint("n1", AT, "webinar-attended", channel="events", utm={"utm_campaign": "q1"})
    touch = touch_from_touchpoint("c", point)
    assert (touch.kind, touch.channel, touch.campaign) == (TouchKind.CAMPAIGN, Channel.EVENTS, "q1")


def test_naive_touch_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        make_touch("c", datetime(2024, 3, 1), TouchKind.VISIT)  # the naive time under test
