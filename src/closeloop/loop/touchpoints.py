"""Touchpoints: a contact's marketing interactions, each with a channel derived from its UTM values."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from closeloop.loop.source import OriginalSource
from closeloop.model import Touchpoint, utc


class TouchKind(enum.StrEnum):
    """What kind of interaction a touch records."""

    ORIGINAL_SOURCE = "original_source"
    CAMPAIGN = "campaign"
    FORM_FILL = "form_fill"
    VISIT = "visit"
    MERGED_SOURCE = "merged_source"
    """The original source of a contact merged into this one: a touch of the merged journey."""


class Channel(enum.StrEnum):
    """The marketing channel a touch came through."""

    PAID_SEARCH = "paid_search"
    PAID_SOCIAL = "paid_social"
    EMAIL = "email"
    ORGANIC_SEARCH = "organic_search"
    REFERRAL = "referral"
    DIRECT = "direct"
    EVENTS = "events"
    OTHER = "other"

    @property
    def label(self) -> str:
        """The channel as people write it ("Paid search")."""
        return self.value.replace("_", " ").capitalize()


_SOCIAL = frozenset({"facebook", "fb", "instagram", "linkedin", "twitter", "x", "tiktok", "reddit", "youtube"})
_SEARCH = frozenset({"google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia"})
_PAID = frozenset({"cpc", "ppc", "paid", "cpm", "display", "ads"})
_ANY: frozenset[str] = frozenset()

# Rules in order; the first whose medium set and source set both match wins (an empty set matches anything).
CHANNEL_RULES: tuple[tuple[frozenset[str], frozenset[str], Channel], ...] = (
    (
        frozenset({"paid_social", "paid-social", "paidsocial", "social_paid", "social-paid"}),
        _ANY,
        Channel.PAID_SOCIAL,
    ),
    (_PAID, _SOCIAL, Channel.PAID_SOCIAL),
    (
        frozenset({"cpc", "ppc", "paid", "paid_search", "paid-search", "paidsearch", "sem"}),
        _ANY,
        Channel.PAID_SEARCH,
    ),
    (frozenset({"email", "e-mail", "newsletter", "mail"}), _ANY, Channel.EMAIL),
    (frozenset({"organic", "seo", "organic_search", "organic-search"}), _ANY, Channel.ORGANIC_SEARCH),
    (frozenset({"referral", "partner", "affiliate"}), _ANY, Channel.REFERRAL),
    (frozenset({"event", "events", "conference", "tradeshow", "webinar", "meetup"}), _ANY, Channel.EVENTS),
    (frozenset({"(none)", "none", "direct"}), _ANY, Channel.DIRECT),
    (frozenset({""}), frozenset({"", "(direct)", "direct"}), Channel.DIRECT),
    (frozenset({""}), _SEARCH, Channel.ORGANIC_SEARCH),
    (frozenset({"social", "social-media", "social_media"}), _ANY, Channel.OTHER),
)

# Source types as systems report them (normalized to lower snake case) mapped to channels.
SOURCE_TYPE_CHANNELS: Mapping[str, Channel] = {
    "paid_search": Channel.PAID_SEARCH,
    "paid_social": Channel.PAID_SOCIAL,
    "email": Channel.EMAIL,
    "email_marketing": Channel.EMAIL,
    "organic_search": Channel.ORGANIC_SEARCH,
    "referral": Channel.REFERRAL,
    "referrals": Channel.REFERRAL,
    "direct": Channel.DIRECT,
    "direct_traffic": Channel.DIRECT,
    "event": Channel.EVENTS,
    "events": Channel.EVENTS,
    "offline": Channel.EVENTS,
    "social_media": Channel.OTHER,
    "other": Channel.OTHER,
    "other_campaigns": Channel.OTHER,
}


def _norm(text: str | None) -> str:
    return (text or "").strip().lower()


def derive_channel(utm_source: str | None, utm_medium: str | None) -> Channel:
    """The channel that UTM source and medium point to, by ``CHANNEL_RULES``; unmatched values are OTHER."""
    source, medium = _norm(utm_source), _norm(utm_medium)
    for mediums, sources, channel in CHANNEL_RULES:
        if (not mediums or medium in mediums) and (not sources or source in sources):
            return channel
    return Channel.OTHER


def channel_of_source(source: OriginalSource) -> Channel:
    """The channel of an original source: its source type when known, else its UTM values."""
    key = _norm(source.source_type).replace(" ", "_").replace("-", "_")
    if key in SOURCE_TYPE_CHANNELS:
        return SOURCE_TYPE_CHANNELS[key]
    if source.utm_source or source.utm_medium:
        return derive_channel(source.utm_source, source.utm_medium)
    return Channel.OTHER


@dataclass(frozen=True, slots=True)
class Touch:
    """One interaction of a contact, as attribution sees it."""

    contact_id: str
    at: datetime
    kind: TouchKind
    channel: Channel
    campaign: str | None = None
    utm: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", utc(self.at))
        object.__setattr__(self, "kind", TouchKind(self.kind))
        object.__setattr__(self, "channel", Channel(self.channel))


def make_touch(
    contact_id: str,
    at: datetime,
    kind: TouchKind,
    *,
    utm: Mapping[str, str] | None = None,
    campaign: str | None = None,
    channel: Channel | None = None,
) -> Touch:
    """A touch whose channel and campaign default to what its UTM values say."""
    values = dict(utm or {})
    return Touch(
        contact_id=contact_id,
        at=at,
        kind=kind,
        channel=channel or derive_channel(values.get("utm_source"), values.get("utm_medium")),
        campaign=campaign or values.get("utm_campaign") or None,
        utm=values,
    )


def touch_from_original_source(contact_id: str, source: OriginalSource) -> Touch | None:
    """The original source as a touch, or None when its first-touch time is unknown."""
    if source.first_touch_at is None:
        return None
    utm = {
        key: value
        for key, value in (
            ("utm_source", source.utm_source),
            ("utm_medium", source.utm_medium),
            ("utm_campaign", source.utm_campaign),
        )
        if value
    }
    return Touch(
        contact_id,
        source.first_touch_at,
        TouchKind.ORIGINAL_SOURCE,
        channel_of_source(source),
        source.utm_campaign,
        utm,
    )


def touch_from_touchpoint(contact_id: str, touchpoint: Touchpoint) -> Touch:
    """A stored touchpoint as a touch; an unknown kind counts as a campaign touch."""
    kinds = {k.value for k in TouchKind}
    kind = TouchKind(touchpoint.kind) if touchpoint.kind in kinds else TouchKind.CAMPAIGN
    channel = Channel(touchpoint.channel) if touchpoint.channel in {c.value for c in Channel} else None
    return make_touch(
        contact_id,
        touchpoint.occurred_at,
        kind,
        utm=touchpoint.utm,
        campaign=touchpoint.campaign,
        channel=channel,
    )
