"""Fixtures: a seeded March 2024 scenario whose figures the tests check against hand-computed literals.

Base currency EUR; USD at 0.9 and GBP at 1.15. Deals:
  D1  1200.00 EUR, created 2024-03-13, won 2024-03-20, contact c1 (created 03-06), five touches at ages 21, 14,
      14, 7 and 0 days: lead creation on the third, deal creation on the fourth, the close on the fifth.
  D2  1000.00 USD (900.00 EUR), created 2024-03-18, won 2024-03-25, contacts c2 (created 03-04) and c7 (03-12),
      four touches at ages 21, 14, 13 and 7 days: c2's original source (lead creation), c7's campaign, c7's
      original source (no first-touch time: at its creation), c7's paid-search touch (deal creation).
  D4   500.00 GBP (575.00 EUR), won 2024-02-25 (before the period), contact c8.
  D5   300.00 EUR, won 2024-03-10 for c3, then reopened: reversed to zero.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from closeloop.loop import (
    ContactFacts,
    DealState,
    FunnelStage,
    LedgerEntry,
    OriginalSource,
    Rates,
    ReportInput,
    Touch,
    TouchKind,
    ledger_delta,
    make_touch,
    parse_spend_csv,
)

RATES = Rates("EUR", {"USD": Decimal("0.9"), "GBP": Decimal("1.15")})
PERIOD_START = datetime(2024, 3, 1, tzinfo=UTC)
PERIOD_END = datetime(2024, 4, 1, tzinfo=UTC)
SPEND_CSV = """period,channel,campaign,amount
2024-03,paid_search,spring,400
2024-03,email,,100
2024-03-15,events,expo,300
2024-02,paid_search,spring,999
"""


def day(month: int, dom: int) -> datetime:
    """Midnight UTC on a day of 2024."""
    return datetime(2024, month, dom, tzinfo=UTC)


def utm(source: str, medium: str, campaign: str | None = None) -> dict[str, str]:
    """UTM values as a touch carries them."""
    values = {"utm_source": source, "utm_medium": medium}
    return values | ({"utm_campaign": campaign} if campaign else {})


def _contact(cid: str, created: datetime, stage: str, source: OriginalSource | None, **dates: datetime) -> ContactFacts:
    stage_dates = {FunnelStage(k): v for k, v in dates.items()}
    return ContactFacts(cid, created, stage, source, stage_dates)


def contacts() -> tuple[ContactFacts, ...]:
    """Eight contacts created in March (c1-c7, c9) and one created in February (c8)."""
    paid = OriginalSource("paid_search", None, "google", "cpc", "spring", day(2, 28), "crm")
    return (
        _contact("c1", day(3, 6), "customer", paid),
        _contact("c2", day(3, 4), "customer", OriginalSource("ORGANIC_SEARCH", first_touch_at=day(3, 4))),
        _contact("c3", day(3, 5), "opportunity", OriginalSource(utm_source="google", utm_medium="cpc")),
        _contact("c4", day(3, 6), "lead", OriginalSource("EMAIL_MARKETING"), mql=day(3, 7), sql=day(3, 9)),
        _contact("c5", day(3, 8), "marketingqualifiedlead", OriginalSource("paid search")),
        _contact("c6", day(3, 10), "lead", OriginalSource("organic_search")),
        _contact("c7", day(3, 12), "customer", OriginalSource("email", utm_campaign="webinar")),
        _contact("c8", day(2, 20), "customer", OriginalSource("referrals")),
        _contact("c9", day(3, 15), "subscriber", None),
    )


def touches() -> tuple[Touch, ...]:
    """D1's five touches (c1), D2's two recorded touches (c7) and a visit after D2 closed (c2).

    No touch marks a milestone: the lead-creation, deal-creation and closed-won touches follow from the times.
    """
    return (
        make_touch("c1", day(2, 28), TouchKind.ORIGINAL_SOURCE, utm=utm("google", "cpc", "spring")),
        make_touch("c1", day(3, 6), TouchKind.FORM_FILL, utm=utm("newsletter", "email", "nurture")),
        make_touch("c1", day(3, 6), TouchKind.VISIT, utm=utm("newsletter", "email", "nurture")),
        make_touch("c1", day(3, 13), TouchKind.CAMPAIGN, utm=utm("expo", "event", "expo")),
        make_touch("c1", day(3, 20), TouchKind.VISIT),
        make_touch("c7", day(3, 11), TouchKind.CAMPAIGN, utm=utm("newsletter", "email", "webinar")),
        make_touch("c7", day(3, 18), TouchKind.FORM_FILL, utm=utm("google", "cpc", "spring")),
        make_touch("c2", day(3, 28), TouchKind.VISIT, utm=utm("google", "cpc", "spring")),
    )


def deal_history() -> list[DealState]:
    """Deal states in the order the sync saw them."""
    return [
        DealState("D4", won=True, amount=Decimal("500.00"), currency="GBP", closed_at=day(2, 25), contacts=("c8",)),
        DealState("D5", won=True, amount=Decimal("300.00"), currency="EUR", closed_at=day(3, 10), contacts=("c3",)),
        DealState("D1", won=True, amount=Decimal("1200.00"), currency="EUR", closed_at=day(3, 20), contacts=("c1",)),
        DealState("D5", won=False, amount=Decimal("300.00"), currency="EUR", closed_at=None, contacts=("c3",)),
        DealState(
            "D2",
            won=True,
            amount=Decimal("1000.00"),
            currency="usd",
            closed_at=day(3, 25),
            contacts=("c7", "c2"),
        ),
        DealState("D1", won=True, amount=Decimal("1200.00"), currency="EUR", closed_at=day(3, 20), contacts=("c1",)),
    ]


def ledger() -> tuple[LedgerEntry, ...]:
    """The ledger the deal history produces."""
    entries: list[LedgerEntry] = []
    for state in deal_history():
        delta = ledger_delta(entries, state, RATES)
        assert isinstance(delta, list)
        entries.extend(delta)
    return tuple(entries)


def report_input(*, with_spend: bool = True) -> ReportInput:
    """The March 2024 report input."""
    spend = tuple(parse_spend_csv(SPEND_CSV)) if with_spend else ()
    created = {"D1": day(3, 13), "D2": day(3, 18), "D4": day(2, 1)}
    return ReportInput(contacts(), ledger(), touches(), PERIOD_START, PERIOD_END, "EUR", spend, created)


@pytest.fixture
def scenario_ledger() -> tuple[LedgerEntry, ...]:
    """The scenario's ledger."""
    return ledger()


@pytest.fixture
def scenario_input() -> ReportInput:
    """The scenario's March 2024 report input, spend included."""
    return report_input()
