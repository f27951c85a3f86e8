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


@dataclass(frozen=True, slots=True)
class Milestones:
    """When a deal's journey passed its milestones: lead (contact) creation, deal creation and the close.

    A time left None is unknown: the model's share for that milestone drops out (see ``weights``).
    """

    lead_created_at: datetime | None = None
    deal_created_at: datetime | None = None
    closed_at: datetime | None = None


NO_MILESTONES = Milestones()


def ordered(touches: Sequence[Touch]) -> list[Touch]:
    """Touches in journey order: by time, then kind, contact, channel and campaign, so ties are stable."""
    return sorted(touches, key=lambda t: (t.at, _KIND_ORDER[t.kind], t.contact_id, t.channel.value, t.campaign or ""))


def milestone_touch(touches: Sequence[Touch], at: datetime | None) -> int | None:
    """The position of the last touch at or before ``at``; the first touch when every touch is later.

    None when ``at`` is unknown. The first touch stands for a milestone that precedes the whole journey
    because it is the touch nearest to it.
    """
    if at is None or not touches:
        return None
    before = [i for i, t in enumerate(touches) if t.at <= at]
    return before[-1] if before else 0


# (first touch, lead creation, deal creation, closed won) shares, and the share of the other touches.
_POSITIONAL: dict[Model, tuple[tuple[Fraction, ...], Fraction]] = {
    Model.U_SHAPED: ((Fraction(2, 5), Fraction(2, 5)), Fraction(1, 5)),
    Model.W_SHAPED: ((Fraction(3, 10), Fraction(3, 10), Fraction(3, 10)), Fraction(1, 10)),
    Model.FULL_PATH: ((Fraction(9, 40),) * 4, Fraction(1, 10)),
}


def _positional(model: Model, touches: Sequence[Touch], milestones: Milestones) -> list[Fraction]:
    """Milestone touches take their model shares (two on one touch add up); the other touches split the rest.

    Shares that have no touch to go to (an unknown milestone time, no other touches) drop out, and the
    weights are scaled back to a whole by the caller, so what is left keeps its proportions.
    """
    shares, rest = _POSITIONAL[model]
    marks = (
        0,
        milestone_touch(touches, milestones.lead_created_at),
        milestone_touch(touches, milestones.deal_created_at),
        milestone_touch(touches, milestones.closed_at) if milestones.closed_at else len(touches) - 1,
    )
    raw = [Fraction(0)] * len(touches)
    for mark, share in zip(marks, shares, strict=False):
        if mark is not None:
            raw[mark] += share
    others = [i for i, w in enumerate(raw) if not w]
    for i in others:
        raw[i] = rest / len(others)
    return raw


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
    milestones: Milestones = NO_MILESTONES,
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
    elif model in _POSITIONAL:
        raw = _positional(model, touches, milestones)
    else:
        raw = _decay(touches, milestones.closed_at, half_life)
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
    milestones: Milestones = NO_MILESTONES,
    *,
    half_life: timedelta = DEFAULT_HALF_LIFE,
) -> list[Credit]:
    """Credit ``deal_amount`` over ``touches`` under ``model``; credits sum to the amount in cents exactly.

    Touches are put in journey order first; a deal without touches gets no credits.
    """
    journey = ordered(touches)
    shares = weights(model, journey, milestones, half_life)
    amounts = split_cents(deal_amount, shares)
    return [Credit(t, a, s) for t, a, s in zip(journey, amounts, shares, strict=True)]
