"""Marketing-originated and marketing-influenced revenue, and the data-quality figures of a report.

Definitions (as the field's attribution and campaign-influence tools use the words; the README names them):

- a *marketing touch* is any recorded touch except a direct one without a campaign: a direct touch with no
  campaign says the buyer came on their own or sales entered them, and nothing marketing did is on record;
- a deal is *marketing-originated* (marketing-sourced) when the first touch of its journey is a marketing touch
  made at or before the deal's creation: marketing brought the buyer before sales opened the deal (a deal whose
  creation time is unknown is judged by its first touch alone);
- a deal is *marketing-influenced* when its journey holds at least one marketing touch at or before its close:
  every originated deal is influenced, and so is a deal sales opened that marketing touched later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from closeloop.loop.attribution import ordered
from closeloop.loop.ledger import Position
from closeloop.loop.money import cents
from closeloop.loop.touchpoints import Channel, Touch


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part * 100 / whole).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class RevenueShare:
    """Revenue and deals of one kind among the won deals of the period, and the share of revenue they make."""

    revenue: Decimal
    deals: int
    share: Decimal | None
    """Percent of the period's closed-won revenue; None when the period has none."""


@dataclass(frozen=True, slots=True)
class Influence:
    """Marketing-originated and marketing-influenced closed-won revenue of the period (see the module)."""

    originated: RevenueShare
    influenced: RevenueShare


@dataclass(frozen=True, slots=True)
class DataQuality:
    """What the report could not attribute or price, so a reader knows how far to trust the figures.

    ``unattributed`` are the won deals of the period whose contacts have no touch at or before the close (no
    model can credit them: they count as "(unattributed)" under every model); ``without_contacts`` the won deals
    credited to no contact at all (among the unattributed); ``unpriced_open_deals`` the open deals left out of the
    pipeline because their currency has no rate or is blank.
    """

    unattributed: RevenueShare
    without_contacts: int
    unpriced_open_deals: int


def is_marketing(touch: Touch) -> bool:
    """True unless the touch is direct and names no campaign."""
    return touch.channel is not Channel.DIRECT or bool(touch.campaign)


def originated(touches: Sequence[Touch], created_at: datetime | None) -> bool:
    """True when the journey's first touch is a marketing touch made at or before the deal's creation."""
    journey = ordered(touches)
    if not journey or not is_marketing(journey[0]):
        return False
    return created_at is None or journey[0].at <= created_at


def _share(deals: Sequence[Position], total: Decimal) -> RevenueShare:
    revenue = cents(sum((d.amount_base for d in deals), Decimal(0)))
    return RevenueShare(revenue, len(deals), _percent(revenue, total))


def build_influence(
    deals: Sequence[Position], touches: Mapping[str, Sequence[Touch]], created: Mapping[str, datetime]
) -> Influence:
    """Originated and influenced revenue of ``deals``; ``touches`` holds each deal's touches up to its close."""
    total = sum((d.amount_base for d in deals), Decimal(0))
    sourced = [d for d in deals if originated(touches[d.deal_id], created.get(d.deal_id))]
    touched = [d for d in deals if any(is_marketing(t) for t in touches[d.deal_id])]
    return Influence(_share(sourced, total), _share(touched, total))


def build_quality(
    deals: Sequence[Position], touches: Mapping[str, Sequence[Touch]], unpriced_open_deals: int
) -> DataQuality:
    """The unattributed share of the period's revenue and the deals the report had to leave out."""
    total = sum((d.amount_base for d in deals), Decimal(0))
    blind = [d for d in deals if not touches[d.deal_id]]
    lonely = sum(1 for d in deals if not d.contacts)
    return DataQuality(_share(blind, total), lonely, unpriced_open_deals)
