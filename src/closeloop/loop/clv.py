"""Customer lifetime value: what each customer has brought in across its won deals, by where it came from.

Definitions (the README states them for users):

- A *customer* is a contact credited with at least one deal that stands won in the ledger now; it became one at
  the close of its first such deal.
- Its *lifetime value* (CLV) is the revenue of all its standing won deals (first sale, renewals, expansions) in
  the base currency, closed within the horizon after its first win (every one when no horizon is set). A deal
  credited to several contacts gives each an equal share, so the customers' values add up to the revenue.
- The report counts the customers acquired in the period (first win in the period) by original source and by
  campaign (the original source's UTM campaign): how many, their total and average CLV, and, where the spend
  file has spend for that source or campaign in the period, the CAC (spend / customers acquired) and CLV:CAC
  (average CLV / CAC, which is total CLV / spend).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from closeloop.loop.ledger import LedgerEntry, Position, positions
from closeloop.loop.money import cents
from closeloop.loop.spend import SpendRow

RATIO = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Customer:
    """One customer: when it first won, its lifetime value, and the source and campaign it came from."""

    contact_id: str
    first_won_at: datetime
    value: Decimal
    deals: int
    source: str
    campaign: str


@dataclass(frozen=True, slots=True)
class ClvRow:
    """Customers acquired in the period from one source or campaign, their CLV and, with spend, CAC and CLV:CAC."""

    dimension: str
    key: str
    customers: int
    total_value: Decimal
    average_value: Decimal
    spend: Decimal | None = None
    cac: Decimal | None = None
    clv_to_cac: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ClvReport:
    """The customer lifetime value section: every customer acquired in the period, and the rows by key."""

    horizon_days: int | None
    total: ClvRow
    rows: tuple[ClvRow, ...]

    def rows_for(self, dimension: str) -> list[ClvRow]:
        """The rows of one dimension ("source" or "campaign")."""
        return [r for r in self.rows if r.dimension == dimension]


def customer_values(won: Iterable[Position], horizon: timedelta | None) -> dict[str, tuple[datetime, Decimal, int]]:
    """Each customer's first win, lifetime value (its equal shares of its won deals in the horizon) and deal count."""
    deals: dict[str, list[Position]] = defaultdict(list)
    for pos in won:
        if pos.closed_at is not None:
            for contact in dict.fromkeys(pos.contacts):
                deals[contact].append(pos)
    found = {}
    for contact, mine in deals.items():
        first = min(p.closed_at for p in mine if p.closed_at is not None)
        counted = [p for p in mine if p.closed_at is not None and (horizon is None or p.closed_at <= first + horizon)]
        value = sum((p.amount_base / len(set(p.contacts)) for p in counted), Decimal(0))
        found[contact] = (first, value, len(counted))
    return found


def _spend_by(spend: Sequence[SpendRow], start: datetime, end: datetime) -> dict[tuple[str, str], Decimal]:
    found: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in spend:
        if row.overlaps(start, end):
            found["source", row.channel.value] += row.amount
            if row.campaign:
                found["campaign", row.campaign] += row.amount
    return found


def clv_row(dimension: str, key: str, members: Sequence[Customer], spend: Decimal | None) -> ClvRow:
    """The figures of one group of customers, with CAC and CLV:CAC when ``spend`` is known."""
    total = sum((c.value for c in members), Decimal(0))
    count = len(members)
    average = cents(total / count) if count else Decimal("0.00")
    cac = cents(spend / count) if spend is not None and count else None
    ratio = (total / spend).quantize(RATIO) if spend and count else None
    return ClvRow(dimension, key, count, cents(total), average, None if spend is None else cents(spend), cac, ratio)


def build_clv(
    ledger: Sequence[LedgerEntry],
    origins: Mapping[str, tuple[str, str]],
    period_start: datetime,
    period_end: datetime,
    spend: Sequence[SpendRow] = (),
    horizon_days: int | None = None,
) -> ClvReport:
    """CLV of the customers acquired in [period_start, period_end); ``origins`` gives each contact's
    (source, campaign)."""
    horizon = timedelta(days=horizon_days) if horizon_days is not None else None
    values = customer_values(positions(ledger).values(), horizon)
    acquired = [
        Customer(contact, first, value, deals, *origins.get(contact, ("unknown", "(no campaign)")))
        for contact, (first, value, deals) in values.items()
        if period_start <= first < period_end
    ]
    spent = _spend_by(spend, period_start, period_end)
    rows: list[ClvRow] = []
    for dimension in ("source", "campaign"):
        groups: dict[str, list[Customer]] = defaultdict(list)
        for customer in acquired:
            groups[customer.source if dimension == "source" else customer.campaign].append(customer)
        keys = set(groups) | {key for d, key in spent if d == dimension}
        found = [clv_row(dimension, k, groups.get(k, []), spent.get((dimension, k))) for k in keys]
        found.sort(key=lambda r: (-r.total_value, -r.customers, r.key))
        rows += found
    total_spend = sum((v for (d, _), v in spent.items() if d == "source"), Decimal(0)) if spent else None
    return ClvReport(horizon_days, clv_row("all", "all", acquired, total_spend), tuple(rows))
