"""Attribution models: how one deal's amount is split over the touches that led to it."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

from closeloop.loop.money import cents
from closeloop.loop.touchpoints import Touch, TouchKind

DEFAULT_HALF_LIFE = timedelta(days=7)


class Model(enum.StrEnum):
    """The attribution models closeloop reports under."""

    FIRST_TOUCH = "first_touch"
    LAST_TOUCH = "last_touch"
    LINEAR = "linear"
    U_SHAPED = "u_shaped"
    W_SHAPED = "w_shaped"
    FULL_PATH = "full_path"
    TIME_DECAY = "time_decay"

    @property
    def label(self) -> str:
        """The model as people write it ("U-shaped")."""
        return _LABELS[self]


_LABELS = {
    Model.FIRST_TOUCH: "First touch",
    Model.LAST_TOUCH: "Last touch",
    Model.LINEAR: "Linear",
    Model.U_SHAPED: "U-shaped",
    Model.W_SHAPED: "W-shaped",
    Model.FULL_PATH: "Full path",
    Model.TIME_DECAY: "Time decay",
}


@dataclass(frozen=True, slots=True)
class Credit:
    """The part of a deal credited to one touch: ``amount`` in cents, ``share`` the exact model weight."""

    touch: Touch
    amount: Decimal
    share: Fraction


_KIND_ORDER = {kind: rank for rank, kind in enumerate(TouchKind)}


def ordered(touches: Sequence[Touch]) -> list[Touch]:
    """Touches in journey order: by time, then kind, contact, channel and campaign, so ties are stable."""
    return sorted(touches, key=lambda t: (t.at, _KIND_ORDER[t.kind], t.contact_id, t.channel.value, t.campaign or ""))


def _first_of(touches: Sequence[Touch], kind: TouchKind) -> int | None:
    return next((i for i, t in enumerate(touches) if t.kind is kind), None)


def _last_of(touches: Sequence[Touch], kind: TouchKind) -> int | None:
    found = [i for i, t in enumerate(touches) if t.kind is kind]
    return found[-1] if found else None


def _milestone_weights(milestones: Sequence[int | None], count: int) -> list[Fraction]:
    """Distinct milestone touches share 90%, the other touches 10%; with no others the milestones share all.

    A missing milestone's share goes to the milestones present, and milestones that fall on the same touch
    count once, so the weights degrade smoothly down to one touch taking everything.
    """
    marked = {m for m in milestones if m is not None}
    others = count - len(marked)
    if others == 0:
        return [Fraction(1, count)] * count
    return [Fraction(9, 10 * len(marked)) if i in marked else Fraction(1, 10 * others) for i in range(count)]


def _u_shaped(count: int) -> list[Fraction]:
    if count <= 2:
        return [Fraction(1, count)] * count
    middle = Fraction(1, 5 * (count - 2))
    return [Fraction(2, 5), *([middle] * (count - 2)), Fraction(2, 5)]


def _decay(touches: Sequence[Touch], closed_at: datetime | None, half_life: timedelta) -> list[Fraction]:
    """Weights 2^(-age / half-life), age measured back from the close (touches after it count as at it)."""
    reference = closed_at or touches[-1].at
    micro = timedelta(microseconds=1)
    half = Decimal(max(half_life // micro, 1))
    with localcontext() as ctx:
        ctx.prec = 40
        ages = [Decimal(max(reference - t.at, timedelta(0)) // micro) for t in touches]
        return [Fraction(Decimal(2) ** (-age / half)) for age in ages]


def weights(
    model: Model,
    touches: Sequence[Touch],
    *,
    closed_at: datetime | None = None,
    half_life: timedelta = DEFAULT_HALF_LIFE,
) -> list[Fraction]:
    """Each touch's exact share of the deal under ``model``; ``touches`` must be in journey order."""
    count = len(touches)
    if count == 0:
        return []
    if model is Model.FIRST_TOUCH:
        raw = [Fraction(1)] + [Fraction(0)] * (count - 1)
    elif model is Model.LAST_TOUCH:
        raw = [Fraction(0)] * (count - 1) + [Fraction(1)]
    elif model is Model.LINEAR:
        raw = [Fraction(1)] * count
    elif model is Model.U_SHAPED:
        raw = _u_shaped(count)
    elif model is Model.W_SHAPED:
        lead, deal = _first_of(touches, TouchKind.LEAD_CREATED), _first_of(touches, TouchKind.DEAL_CREATED)
        raw = _milestone_weights((0, lead, deal), count)
    elif model is Model.FULL_PATH:
        lead, deal = _first_of(touches, TouchKind.LEAD_CREATED), _first_of(touches, TouchKind.DEAL_CREATED)
        won = _last_of(touches, TouchKind.CLOSED_WON)
        raw = _milestone_weights((0, lead, deal, won), count)
    else:
        raw = _decay(touches, closed_at, half_life)
    total = sum(raw, Fraction(0))
    return [w / total for w in raw]


def split_cents(amount: Decimal, shares: Sequence[Fraction]) -> list[Decimal]:
    """Split ``amount`` (rounded to cents) by ``shares`` (summing to 1) so the parts add up exactly.

    Each part is first rounded down to a cent; the cents left over go one at a time to the largest
    remainders, then the largest shares, then the earliest positions.
    """
    total = int(cents(amount) * 100)
    sign, total = (-1 if total < 0 else 1), abs(total)
    exact = [total * share for share in shares]
    parts = [math.floor(x) for x in exact]
    leftover = total - sum(parts)
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), -exact[i], i))
    for i in order[:leftover]:
        parts[i] += 1
    return [Decimal(sign * p).scaleb(-2) for p in parts]


def attribute(
    model: Model,
    deal_amount: Decimal,
    touches: Sequence[Touch],
    *,
    closed_at: datetime | None = None,
    half_life: timedelta = DEFAULT_HALF_LIFE,
) -> list[Credit]:
    """Credit ``deal_amount`` over ``touches`` under ``model``; credits sum to the amount in cents exactly.

    Touches are put in journey order first; a deal without touches gets no credits.
    """
    journey = ordered(touches)
    shares = weights(model, journey, closed_at=closed_at, half_life=half_life)
    amounts = split_cents(deal_amount, shares)
    return [Credit(t, a, s) for t, a, s in zip(journey, amounts, shares, strict=True)]
