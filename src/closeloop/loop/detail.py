"""The report's ``--detail``: each deal with its touches in journey order and every model's credit to each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from closeloop.loop.attribution import Milestones, Model, attribute, ordered
from closeloop.loop.ledger import Position
from closeloop.loop.touchpoints import Touch

SHARE = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class TouchCredit:
    """One touch of a deal's journey and what each model credits it: amounts and shares, in the models' order."""

    touch: Touch
    contact: str
    """The touch's contact as people know it: its email where the store has one, else its id."""
    amounts: tuple[Decimal, ...]
    shares: tuple[Decimal, ...]
    """Each model's fraction of the deal given to the touch, to four decimals (0.3333 is a third of the deal)."""


@dataclass(frozen=True, slots=True)
class DealDetail:
    """One deal as the report credits it: won in the period (``closed_at`` set) or open."""

    deal_id: str
    name: str | None
    amount_base: Decimal
    created_at: datetime | None
    closed_at: datetime | None
    contacts: tuple[str, ...]
    """The deal's contacts as people know them (email, else id)."""
    touches: tuple[TouchCredit, ...]

    @property
    def status(self) -> str:
        """ "won" or "open"."""
        return "open" if self.closed_at is None else "won"


def share_of(fraction: Fraction) -> Decimal:
    """An exact model weight as a decimal fraction of the deal to four places."""
    return (Decimal(fraction.numerator) / Decimal(fraction.denominator)).quantize(SHARE)


def deal_detail(
    deal: Position,
    touches: Sequence[Touch],
    milestones: Milestones,
    models: Sequence[Model],
    half_life: timedelta,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> DealDetail:
    """One deal's touches in journey order, each with every model's credit; credits sum to the deal per model."""
    journey = ordered(touches)
    label = (labels or {}).get
    per_model = [attribute(m, deal.amount_base, journey, milestones, half_life=half_life) for m in models]
    lines = tuple(
        TouchCredit(
            touch,
            label(touch.contact_id, touch.contact_id),
            tuple(credits[i].amount for credits in per_model),
            tuple(share_of(credits[i].share) for credits in per_model),
        )
        for i, touch in enumerate(journey)
    )
    return DealDetail(
        deal.deal_id,
        name,
        deal.amount_base,
        milestones.deal_created_at,
        deal.closed_at,
        tuple(label(c, c) for c in deal.contacts),
        lines,
    )


def build_details(
    deals: Sequence[Position],
    touches: Mapping[str, Sequence[Touch]],
    milestones: Mapping[str, Milestones],
    models: Sequence[Model],
    half_life: timedelta,
    names: Mapping[str, str],
    labels: Mapping[str, str],
) -> list[DealDetail]:
    """Every deal's detail, in the order given; ``labels`` names contacts (id -> email)."""
    return [
        deal_detail(d, touches[d.deal_id], milestones[d.deal_id], models, half_life, names.get(d.deal_id), labels)
        for d in deals
    ]
