"""Revenue over time: closed-won revenue per month or quarter of the period, each against the one before it."""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from closeloop.loop.ledger import Position
from closeloop.loop.money import cents


class Granularity(enum.StrEnum):
    """How revenue over time is bucketed."""

    MONTH = "month"
    QUARTER = "quarter"

    @property
    def months(self) -> int:
        """The length of one bucket in calendar months."""
        return 1 if self is Granularity.MONTH else 3


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time [start, end)."""

    start: datetime
    end: datetime

    def holds(self, moment: datetime | None) -> bool:
        """True when ``moment`` falls within the window."""
        return moment is not None and self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class TrendRow:
    """Closed-won revenue in one month or quarter of the period and in the same span one bucket earlier.

    ``partial`` marks a bucket that the period cuts (the report starts or ends inside it); its previous span is
    cut the same way, so the two compare like for like.
    """

    label: str
    window: Window
    revenue: Decimal
    deals: int
    previous_revenue: Decimal
    previous_deals: int
    change: Decimal | None
    """(revenue - previous revenue) / previous revenue in percent; None when the previous span earned nothing."""
    partial: bool


@dataclass(frozen=True, slots=True)
class PeriodComparison:
    """The whole period's closed-won revenue against the previous period of the same length just before it."""

    previous: Window
    revenue: Decimal
    deals: int
    change: Decimal | None


def add_months(moment: datetime, count: int) -> datetime:
    """``moment`` moved by ``count`` calendar months, its day kept where the month has it (else the month's last)."""
    month0 = moment.month - 1 + count
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def change_percent(now: Decimal, before: Decimal) -> Decimal | None:
    """The change from ``before`` to ``now`` in percent, one decimal; None when ``before`` is zero."""
    return None if not before else ((now - before) * 100 / before).quantize(Decimal("0.1"))


def _bucket_start(moment: datetime, by: Granularity) -> datetime:
    month = moment.month - (moment.month - 1) % by.months
    return moment.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def _label(start: datetime, by: Granularity) -> str:
    return f"{start:%Y-%m}" if by is Granularity.MONTH else f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def buckets(period: Window, by: Granularity) -> list[tuple[str, Window, bool]]:
    """The months or quarters that the period touches, cut to it: (label, window, cut by the period)."""
    found = []
    start = _bucket_start(period.start, by)
    while start < period.end:
        end = add_months(start, by.months)
        window = Window(max(start, period.start), min(end, period.end))
        found.append((_label(start, by), window, window != Window(start, end)))
        start = end
    return found


def earned(won: Iterable[Position], window: Window) -> tuple[Decimal, int]:
    """Revenue (base currency) and count of the currently won deals that closed within ``window``."""
    inside = [p.amount_base for p in won if window.holds(p.closed_at)]
    return cents(sum(inside, Decimal(0))), len(inside)


def build_trend(won: Sequence[Position], period: Window, by: Granularity) -> list[TrendRow]:
    """Revenue per month or quarter of ``period``, each against the same span one month or quarter earlier."""
    rows = []
    for label, window, partial in buckets(period, by):
        before = Window(add_months(window.start, -by.months), add_months(window.end, -by.months))
        revenue, deals = earned(won, window)
        previous, previous_deals = earned(won, before)
        change = change_percent(revenue, previous)
        rows.append(TrendRow(label, window, revenue, deals, previous, previous_deals, change, partial))
    return rows


def compare_period(won: Sequence[Position], period: Window) -> PeriodComparison:
    """The period's revenue against the period of the same length that ends where it starts."""
    previous = Window(period.start - (period.end - period.start), period.start)
    revenue, deals = earned(won, previous)
    now, _ = earned(won, period)
    return PeriodComparison(previous, revenue, deals, change_percent(now, revenue))
